#!/bin/sh
# convd from the shell: conv_transpose2d (an upsampling layer) with curl, as v1 JSON and through
# the Open Inference Protocol v2, each checked against the answer worked out by hand. With
#   x = [[1,2],[3,4]] and w = [[1,1],[1,1]] (PyTorch's w: [C, F, kh, kw] = [1, 1, 2, 2]),
# every x[i][j] is spread over the 2x2 block of y at (i*stride, j*stride), summed where blocks
# overlap:
#   stride 2:             y = [[1,1,2,2],[1,1,2,2],[3,3,4,4],[3,3,4,4]]
#   stride 2, output_padding 1: the same with a fifth row and column of zeros
#   stride_h 2, stride_w 1: rows spread apart, columns overlapping:
#                         y = [[1,3,2],[1,3,2],[3,7,4],[3,7,4]]
# and, for dy all ones (stride 2), dx[i][j] = the sum of w = 4 and dw[a][b] = the sum of x = 10.
# Usage: CONVD_URL=http://127.0.0.1:8080 examples/curl/conv_transpose2d.sh
set -eu
URL=${CONVD_URL:-http://127.0.0.1:8080}

# The numbers of output $1 in a v1 or v2 answer, comma-separated, without ".0".
numbers() {
    sed -n -e "s/.*\"$1\":{[^}]*\"data\":\[\([^]]*\)\].*/\1/p" \
        -e "s/.*\"name\":\"$1\"[^}]*\"data\":\[\([^]]*\)\].*/\1/p" | sed 's/\.0\b//g; s/ //g'
}
expect() { # name got want
    if [ "$2" != "$3" ]; then echo "FAIL $1: got '$2', want '$3'" >&2; exit 1; fi
}

x='[[[[1,2],[3,4]]]]'
w='[[[[1,1],[1,1]]]]'

# 1. v1 JSON: forward with stride 2, then with output_padding 1.
answer=$(curl -sS --fail-with-body -H 'Content-Type: application/json' \
    -d "{\"dtype\": \"float64\", \"x\": $x, \"w\": $w, \"stride\": 2}" \
    "$URL/v1/conv_transpose2d/forward")
expect "v1 y" "$(echo "$answer" | numbers y)" "1,1,2,2,1,1,2,2,3,3,4,4,3,3,4,4"
answer=$(curl -sS --fail-with-body -H 'Content-Type: application/json' \
    -d "{\"dtype\": \"float64\", \"x\": $x, \"w\": $w, \"stride\": 2, \"output_padding\": 1}" \
    "$URL/v1/conv_transpose2d/forward")
expect "v1 y, output_padding 1" "$(echo "$answer" | numbers y)" \
    "1,1,2,2,0,1,1,2,2,0,3,3,4,4,0,3,3,4,4,0,0,0,0,0,0"

# 2. v1 JSON backward: dy of y's shape, all ones.
dy='[[[[1,1,1,1],[1,1,1,1],[1,1,1,1],[1,1,1,1]]]]'
answer=$(curl -sS --fail-with-body -H 'Content-Type: application/json' \
    -d "{\"dtype\": \"float64\", \"x\": $x, \"w\": $w, \"dy\": $dy, \"stride\": 2}" \
    "$URL/v1/conv_transpose2d/backward")
expect "v1 dx" "$(echo "$answer" | numbers dx)" "4,4,4,4"
expect "v1 dw" "$(echo "$answer" | numbers dw)" "10,10,10,10"

# 3. Open Inference Protocol v2: a stride per axis, as the scalars stride_h and stride_w.
v2='{"id": "curl-t2d", "parameters": {"stride_h": 2, "stride_w": 1}, "inputs": [
  {"name": "x", "shape": [1, 1, 2, 2], "datatype": "FP64", "data": [1,2,3,4]},
  {"name": "w", "shape": [1, 1, 2, 2], "datatype": "FP64", "data": [1,1,1,1]}]}'
answer=$(curl -sS --fail-with-body -d "$v2" "$URL/v2/models/conv_transpose2d_forward/infer")
expect "v2 y" "$(echo "$answer" | numbers y)" "1,3,2,1,3,2,3,7,4,3,7,4"
case "$answer" in
*'"shape":[1, 1, 4, 3]'*) ;;
*) echo "FAIL v2: y's shape: $answer" >&2; exit 1 ;;
esac

echo "curl conv_transpose2d example: ok"
