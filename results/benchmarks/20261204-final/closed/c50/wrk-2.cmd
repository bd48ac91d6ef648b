taskset -c 1 wrk -t1 -c50 -d10s --latency -s /tmp/inferload-peers-8dqmr330/post.lua http://127.0.0.1:43431/v2/models/bench/infer
