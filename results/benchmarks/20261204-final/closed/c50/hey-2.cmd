taskset -c 1 hey -z 10s -c 50 -cpus 1 -m POST -D /tmp/inferload-peers-8dqmr330/request.json -T application/json http://127.0.0.1:43431/v2/models/bench/infer
