// bpe_reference.mjs — a deliberately simple byte-level BPE trainer, the
// reference our C trainer (src/tokenizer/bpe_train.c) is checked against
// merge for merge. At every step it recounts every adjacent pair of every
// word from scratch (no incremental bookkeeping at all), so it is slow but
// obviously right.
//
// Rules (the same as the C trainer's): pre-tokens by GPT-2's regex (a
// JavaScript regex here, independent of our hand-written scanner); ids 0-255
// are the bytes, 256-258 the special tokens; each step merges the pair with
// the highest count, ties going to the smaller left id, then the smaller
// right id; a merge whose bytes already form a token reuses that id;
// occurrences are merged left to right without overlap; stop at the
// vocabulary size or when no pair is left.
//
// usage: node tests/bpe_reference.mjs CORPUS.jsonl VOCAB > merges.txt
// prints one merge a line in tokenizer.json's printable form ("A B").
import fs from 'node:fs';

const [corpusPath, vocabArg] = process.argv.slice(2);
const vocabSize = Number(vocabArg);
if (!corpusPath || !(vocabSize >= 259)) {
  console.error('usage: node tests/bpe_reference.mjs CORPUS.jsonl VOCAB');
  process.exit(2);
}

const pat = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const enc = new TextEncoder();
const counts = new Map();
for (const line of fs.readFileSync(corpusPath, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const text = JSON.parse(line).text;
  for (const m of text.matchAll(pat)) counts.set(m[0], (counts.get(m[0]) || 0) + 1);
}
const words = [...counts].map(([w, c]) => ({ sym: Array.from(enc.encode(w)), count: c }));

// GPT-2's printable byte map, for output
const bs = [];
for (let b = 33; b <= 126; b++) bs.push(b);
for (let b = 161; b <= 172; b++) bs.push(b);
for (let b = 174; b <= 255; b++) bs.push(b);
const byteChar = new Array(256);
let extra = 0;
for (let b = 0; b < 256; b++) byteChar[b] = String.fromCodePoint(bs.includes(b) ? b : 256 + extra++);

const tokBytes = [];
for (let b = 0; b < 256; b++) tokBytes.push([b]);
for (const s of ['<|endoftext|>', '<|im_start|>', '<|im_end|>']) tokBytes.push(null); // specials never merge
const byKey = new Map();
tokBytes.forEach((b, i) => { if (b) byKey.set(b.join(','), i); });
const printable = (id) => tokBytes[id].map((b) => byteChar[b]).join('');

const out = [];
while (tokBytes.length < vocabSize) {
  const pc = new Map();
  for (const w of words)
    for (let j = 0; j + 1 < w.sym.length; j++) {
      const k = w.sym[j] * 16777216 + w.sym[j + 1];
      pc.set(k, (pc.get(k) || 0) + w.count);
    }
  let best = -1, bestCount = 0;
  for (const [k, c] of pc) if (c > bestCount || (c === bestCount && k < best)) { best = k; bestCount = c; }
  if (best < 0) break;
  const a = Math.floor(best / 16777216), b = best % 16777216;
  const bytes = tokBytes[a].concat(tokBytes[b]);
  let x = byKey.get(bytes.join(','));
  if (x === undefined) { x = tokBytes.length; tokBytes.push(bytes); byKey.set(bytes.join(','), x); }
  out.push(printable(a) + ' ' + printable(b));
  for (const w of words) {
    const s = [];
    for (let j = 0; j < w.sym.length;) {
      if (j + 1 < w.sym.length && w.sym[j] === a && w.sym[j + 1] === b) { s.push(x); j += 2; } else s.push(w.sym[j++]);
    }
    w.sym = s;
  }
}
process.stdout.write(out.join('\n') + '\n');
console.error(`reference: ${out.length} merges, vocabulary ${tokBytes.length}`);
