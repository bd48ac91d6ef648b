taskset -c 1 h2load -t 1 -c 10 -m 10 -D 10 -d /tmp/inferload-peers-8dqmr330/request.json -H content-type: application/json http://127.0.0.1:42525/v2/models/bench/infer
