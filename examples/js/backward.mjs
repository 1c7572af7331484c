// convd from JavaScript (Node 18+, built-in fetch, no packages): one conv2d backward pass as
// v1 JSON and as safetensors built from typed arrays, each checked against a reference
// computed here by direct summation.
//
// Usage: CONVD_URL=http://127.0.0.1:8080 node examples/js/backward.mjs
const URL_BASE = process.env.CONVD_URL ?? "http://127.0.0.1:8080";
const [N, C, H, W, F, K, STRIDE, PAD] = [2, 3, 7, 6, 4, 3, 1, 1];
const HO = Math.floor((H + 2 * PAD - K) / STRIDE) + 1;
const WO = Math.floor((W + 2 * PAD - K) / STRIDE) + 1;

// Deterministic values in [-1, 1): a small linear congruential generator.
let state = 12345;
const random = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 1073741824) - 1;
const tensor = (shape) => ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b) }, random) });

const x = tensor([N, C, H, W]), w = tensor([F, C, K, K]), b = tensor([F]), dy = tensor([N, F, HO, WO]);

// dx, dw, db of y = conv2d(x, w, b) for upstream gradient dy.
function reference() {
  const dx = new Float64Array(x.data.length), dw = new Float64Array(w.data.length), db = new Float64Array(F);
  for (let n = 0; n < N; n++)
    for (let f = 0; f < F; f++)
      for (let i = 0; i < HO; i++)
        for (let j = 0; j < WO; j++) {
          const g = dy.data[((n * F + f) * HO + i) * WO + j];
          db[f] += g;
          for (let c = 0; c < C; c++)
            for (let a = 0; a < K; a++)
              for (let e = 0; e < K; e++) {
                const r = i * STRIDE + a - PAD, s = j * STRIDE + e - PAD;
                if (r < 0 || r >= H || s < 0 || s >= W) continue;
                const xi = ((n * C + c) * H + r) * W + s, wi = ((f * C + c) * K + a) * K + e;
                dw[wi] += g * x.data[xi];
                dx[xi] += g * w.data[wi];
              }
        }
  return { dx, dw, db };
}

function check(name, got, want) {
  for (const key of ["dx", "dw", "db"]) {
    const a = got[key], e = want[key];
    if (!a || a.length !== e.length) throw new Error(`${name} ${key}: ${a?.length} values, want ${e.length}`);
    for (let i = 0; i < e.length; i++)
      if (Math.abs(a[i] - e[i]) > 1e-4 * (1 + Math.abs(e[i]))) throw new Error(`${name} ${key}[${i}]: ${a[i]} vs ${e[i]}`);
  }
}

// safetensors: u64 header length (little-endian), the JSON header, the tensors' bytes.
function toSafetensors(tensors, metadata) {
  const header = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let text = JSON.stringify(header);
  text += " ".repeat((8 - (text.length % 8)) % 8); // tensors start 8-byte aligned
  const head = new TextEncoder().encode(text);
  const body = new Uint8Array(8 + head.length + offset);
  new DataView(body.buffer).setBigUint64(0, BigInt(head.length), true);
  body.set(head, 8);
  let at = 8 + head.length;
  for (const t of Object.values(tensors)) {
    body.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return body;
}

function fromSafetensors(buffer) {
  const n = Number(new DataView(buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, n)));
  const out = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = info.data_offsets;
    const bytes = buffer.slice(8 + n + begin, 8 + n + end); // a copy: aligned for the typed array
    out[name] = info.dtype === "F64" ? new Float64Array(bytes) : new Float32Array(bytes);
  }
  return { tensors: out, metadata: header.__metadata__ };
}

async function post(path, body, type) {
  const response = await fetch(URL_BASE + path, { method: "POST", body, headers: { "Content-Type": type } });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response;
}

const want = reference();

// 1. v1 JSON, {"shape", "data"} tensors.
const asJson = (t) => ({ shape: t.shape, data: Array.from(t.data) });
let response = await post("/v1/conv2d/backward", JSON.stringify({
  x: asJson(x), w: asJson(w), b: asJson(b), dy: asJson(dy), stride: STRIDE, padding: PAD,
}), "application/json");
const answer = await response.json();
check("JSON", { dx: answer.dx.data, dw: answer.dw.data, db: answer.db.data }, want);

// 2. safetensors both ways.
response = await post("/v1/conv2d/backward",
  toSafetensors({ x, w, b, dy }, { stride: String(STRIDE), padding: String(PAD) }),
  "application/octet-stream");
const { tensors, metadata } = fromSafetensors(await response.arrayBuffer());
check("safetensors", tensors, want);
if (metadata.op !== "conv2d.backward") throw new Error(`metadata ${JSON.stringify(metadata)}`);

console.log("javascript example: ok");
