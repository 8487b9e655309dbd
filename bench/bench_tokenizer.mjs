// bench_tokenizer.mjs — the comparison side of bench/bench_tokenizer.sh:
// encodes FILE with OpenAI's "gpt2" encoding in npm's tiktoken (the Rust
// core compiled to WASM) and js-tiktoken (pure JavaScript), in pieces of
// about 1 MB cut at newlines (as `truthgpt tokenizer bench` does), and prints
// one JSON line per implementation: wall and CPU seconds, MB/s, tokens.
//
// usage: node bench/bench_tokenizer.mjs FILE [tiktoken|js-tiktoken ...]
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tests', 'package.json'));
const [file, ...which] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/bench_tokenizer.mjs FILE [tiktoken|js-tiktoken ...]');
  process.exit(2);
}
const impls = which.length ? which : ['tiktoken', 'js-tiktoken'];
const buf = fs.readFileSync(file);
const text = buf.toString('utf8');
const mb = buf.length / 1e6;
const pieces = [];
for (let a = 0; a < text.length;) {
  let b = Math.min(text.length, a + 1000000);
  while (b < text.length && text[b] !== '\n') b++;
  pieces.push(text.slice(a, b));
  a = b;
}

// REPEAT=N (default 1): N passes, the fastest reported, as `truthgpt
// tokenizer bench --repeat N` does on its side.
const repeat = Math.max(1, parseInt(process.env.REPEAT || '1', 10) || 1);

function run(name, encode) {
  let best = null;
  for (let r = 0; r < repeat; r++) {
    const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
    let tokens = 0;
    for (const p of pieces) tokens += encode(p);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0), cpu = (c.user + c.system) / 1e6;
    if (!best || wall < best.wall) best = { wall, cpu, tokens };
  }
  const { wall, cpu, tokens } = best;
  console.log(JSON.stringify({ impl: name, threads: 1, mb: +mb.toFixed(2), seconds: +wall.toFixed(3),
    mb_per_s: +(mb / wall).toFixed(2), cpu_seconds: +cpu.toFixed(3), mb_per_cpu_s: +(mb / cpu).toFixed(2), tokens,
    runs: repeat }));
}

for (const name of impls) {
  if (name === 'tiktoken') {
    const { get_encoding } = require('tiktoken');
    const enc = get_encoding('gpt2');
    run('tiktoken (npm, WASM)', (p) => enc.encode_ordinary(p).length);
    enc.free();
  } else if (name === 'js-tiktoken') {
    const { getEncoding } = require('js-tiktoken');
    const enc = getEncoding('gpt2');
    run('js-tiktoken (npm)', (p) => enc.encode(p, [], []).length);
  } else {
    console.error(`unknown implementation ${name}`);
    process.exit(2);
  }
}
