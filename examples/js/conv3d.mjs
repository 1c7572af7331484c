// convd from JavaScript (Node 18+, built-in fetch, no packages): a conv3d layer with a stride,
// padding and dilation of its own along each axis (depth, height, width), forward and backward,
// as v1 JSON and through the Open Inference Protocol v2 (JSON data, the per-axis parameters as
// scalars stride_d, stride_h, ...), each checked against a reference computed here by direct
// summation.
//
// Usage: CONVD_URL=http://127.0.0.1:8080 node examples/js/conv3d.mjs
const URL_BASE = process.env.CONVD_URL ?? "http://127.0.0.1:8080";
const [N, C, F] = [2, 3, 4];
const IN = [5, 6, 7], K = [2, 3, 3]; // depth, height, width
const STRIDE = [2, 1, 2], PAD = [1, 0, 1], DILATION = [1, 2, 1];
const OUT = IN.map((size, a) =>
  Math.floor((size + 2 * PAD[a] - DILATION[a] * (K[a] - 1) - 1) / STRIDE[a]) + 1);

// Deterministic values in [-1, 1): a small linear congruential generator.
let state = 2024;
const random = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 1073741824) - 1;
const count = (shape) => shape.reduce((a, b) => a * b);
const tensor = (shape) => ({ shape, data: Array.from({ length: count(shape) }, random) });

const x = tensor([N, C, ...IN]), w = tensor([F, C, ...K]), b = tensor([F]);
const dy = tensor([N, F, ...OUT]);

// y, dx, dw, db of y = conv3d(x, w, b) for upstream gradient dy, one output cell and tap at a time.
function reference() {
  const y = new Float64Array(count([N, F, ...OUT])), dx = new Float64Array(x.data.length);
  const dw = new Float64Array(w.data.length), db = new Float64Array(F);
  const at = (shape, index) => index.reduce((flat, i, axis) => flat * shape[axis] + i, 0);
  for (let n = 0; n < N; n++)
    for (let f = 0; f < F; f++)
      for (let od = 0; od < OUT[0]; od++)
        for (let oh = 0; oh < OUT[1]; oh++)
          for (let ow = 0; ow < OUT[2]; ow++) {
            const yi = at([N, F, ...OUT], [n, f, od, oh, ow]), g = dy.data[yi];
            y[yi] += b.data[f];
            db[f] += g;
            for (let c = 0; c < C; c++)
              for (let kd = 0; kd < K[0]; kd++)
                for (let kh = 0; kh < K[1]; kh++)
                  for (let kw = 0; kw < K[2]; kw++) {
                    const tap = [kd, kh, kw];
                    const cell = [od, oh, ow].map((o, a) =>
                      o * STRIDE[a] + tap[a] * DILATION[a] - PAD[a]);
                    if (cell.some((i, a) => i < 0 || i >= IN[a])) continue;
                    const xi = at([N, C, ...IN], [n, c, ...cell]);
                    const wi = at([F, C, ...K], [f, c, ...tap]);
                    y[yi] += x.data[xi] * w.data[wi];
                    dx[xi] += g * w.data[wi];
                    dw[wi] += g * x.data[xi];
                  }
          }
  return { y, dx, dw, db };
}

function check(name, got, want) {
  for (const [key, e] of Object.entries(want)) {
    const a = got[key];
    if (!a || a.length !== e.length)
      throw new Error(`${name} ${key}: ${a?.length} values, want ${e.length}`);
    for (let i = 0; i < e.length; i++)
      if (Math.abs(a[i] - e[i]) > 1e-9 * (1 + Math.abs(e[i])))
        throw new Error(`${name} ${key}[${i}]: ${a[i]} vs ${e[i]}`);
  }
}

async function post(path, body) {
  const answer = await fetch(`${URL_BASE}${path}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!answer.ok) throw new Error(`${path}: ${answer.status} ${await answer.text()}`);
  return answer.json();
}

const want = reference();

// 1. v1 JSON: tensors as {shape, data}, one number per axis in each parameter list.
const layer = { dtype: "float64", stride: STRIDE, padding: PAD, dilation: DILATION };
let answer = await post("/v1/conv3d/forward", { ...layer, x, w, b });
check("v1 forward", { y: answer.y.data }, { y: want.y });
answer = await post("/v1/conv3d/backward", { ...layer, x, w, b, dy });
check("v1 backward", { dx: answer.dx.data, dw: answer.dw.data, db: answer.db.data },
      { dx: want.dx, dw: want.dw, db: want.db });
if (JSON.stringify(answer.meta.padding) !== JSON.stringify([1, 1, 0, 0, 1, 1]))
  throw new Error(`meta.padding: ${answer.meta.padding}`);

// 2. Open Inference Protocol v2: one scalar per axis, named by the axis (d, h, w).
const parameters = {};
["d", "h", "w"].forEach((axis, a) => {
  parameters[`stride_${axis}`] = STRIDE[a];
  parameters[`padding_${axis}`] = PAD[a];
  parameters[`dilation_${axis}`] = DILATION[a];
});
const input = (name, t) => ({ name, shape: t.shape, datatype: "FP64", data: t.data });
answer = await post("/v2/models/conv3d_backward/infer", {
  id: "js-conv3d", parameters,
  inputs: [input("x", x), input("w", w), input("b", b), input("dy", dy)],
});
const outputs = Object.fromEntries(answer.outputs.map((o) => [o.name, o.data]));
check("v2 backward", outputs, { dx: want.dx, dw: want.dw, db: want.db });
if (answer.parameters.pad_front !== 1 || answer.parameters.pad_top !== 0)
  throw new Error(`v2 parameters: ${JSON.stringify(answer.parameters)}`);

console.log("javascript conv3d example: ok");
