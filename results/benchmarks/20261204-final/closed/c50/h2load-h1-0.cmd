taskset -c 1 h2load -t 1 -c 50 -m 1 -D 10 -d /tmp/inferload-peers-8dqmr330/request.json -H content-type: application/json --h1 http://127.0.0.1:43431/v2/models/bench/infer
