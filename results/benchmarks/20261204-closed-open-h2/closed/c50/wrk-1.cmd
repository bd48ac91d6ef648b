taskset -c 1 wrk -t1 -c50 -d10s --latency -s /tmp/inferload-peers-6osu_9hd/post.lua http://127.0.0.1:41187/v2/models/bench/infer
