taskset -c 1 wrk -t1 -c50 -d10s --latency -s /tmp/inferload-peers-2fpv0euq/post.lua http://127.0.0.1:49785/v2/models/bench/infer
