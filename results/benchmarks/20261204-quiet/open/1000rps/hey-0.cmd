taskset -c 1 hey -z 10s -c 50 -cpus 1 -m POST -D /tmp/inferload-peers-2fpv0euq/request.json -T application/json -q 20.0 http://127.0.0.1:49785/v2/models/bench/infer
