#!/bin/sh
# convd from the shell: one conv2d backward pass with curl, three ways (v1 JSON, the same
# request gzip-compressed both ways, and the Open Inference Protocol v2), each checked against
# the answer worked out by hand:
#   x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2],[3,4]], dy = [[1,1],[1,1]], no padding
#   dw[a][b] = sum of the 2x2 window of x at (a,b)      = [[12,16],[24,28]]
#   dx[p][q] = sum of the w taps that touch x[p][q]     = [[1,3,2],[4,10,6],[3,7,4]]
# Usage: CONVD_URL=http://127.0.0.1:8080 examples/curl/backward.sh
set -eu
URL=${CONVD_URL:-http://127.0.0.1:8080}

# The numbers of output $1 ("dx", "dw") in a v1 answer, comma-separated, without ".0".
numbers() { sed -n "s/.*\"$1\":{[^}]*\"data\":\[\([^]]*\)\].*/\1/p" | sed 's/\.0\b//g; s/ //g'; }
expect() { # name got want
    if [ "$2" != "$3" ]; then echo "FAIL $1: got '$2', want '$3'" >&2; exit 1; fi
}

request='{"dtype": "float64", "x": [[1,2,3],[4,5,6],[7,8,9]], "w": [[1,2],[3,4]], "dy": [[1,1],[1,1]]}'

# 1. v1 JSON.
answer=$(curl -sS --fail-with-body -H 'Content-Type: application/json' -d "$request" \
    "$URL/v1/conv2d/backward")
expect "v1 dw" "$(echo "$answer" | numbers dw)" "12,16,24,28"
expect "v1 dx" "$(echo "$answer" | numbers dx)" "1,3,2,4,10,6,3,7,4"

# 2. The same, the body gzip-compressed and the answer asked compressed (--compressed).
answer=$(echo "$request" | gzip -c | curl -sS --fail-with-body --compressed \
    -H 'Content-Type: application/json' -H 'Content-Encoding: gzip' --data-binary @- \
    "$URL/v1/conv2d/backward")
expect "gzip dw" "$(echo "$answer" | numbers dw)" "12,16,24,28"

# 3. Open Inference Protocol v2 (KServe/Triton): inputs as flat data with a shape.
v2='{"id": "curl-1", "inputs": [
  {"name": "x", "shape": [3, 3], "datatype": "FP64", "data": [1,2,3,4,5,6,7,8,9]},
  {"name": "w", "shape": [2, 2], "datatype": "FP64", "data": [1,2,3,4]},
  {"name": "dy", "shape": [2, 2], "datatype": "FP64", "data": [1,1,1,1]}],
  "outputs": [{"name": "dw"}]}'
answer=$(curl -sS --fail-with-body -d "$v2" "$URL/v2/models/conv2d_backward/infer")
got=$(echo "$answer" | sed -n 's/.*"name":"dw"[^}]*"data":\[\([^]]*\)\].*/\1/p' | sed 's/\.0\b//g')
expect "v2 dw" "$got" "12,16,24,28"
case "$answer" in *'"id":"curl-1"'*) ;; *) echo "FAIL v2: id not echoed: $answer" >&2; exit 1;; esac

echo "curl example: ok"
