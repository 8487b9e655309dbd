// gguf_llama.mjs — runs llama.cpp itself (node-llama-cpp's CPU prebuilt
// binary, no build, nothing downloaded) on a GGUF file and prints one JSON
// object: the vocabulary's special ids, the greedy continuation of a prompt,
// the raw logits at every prompt position, and the ids llama.cpp's tokenizer
// gives for each text of a JSONL file ({"text": ...} a line, special tokens
// not parsed). Run as a child process by gguf_check.mjs: a malformed file
// may abort llama.cpp, and that must fail the test, not hang or kill it.
// Usage: node gguf_llama.mjs FILE --prompt-ids 1,2,3 [--n N] [--texts FILE.jsonl]
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const args = process.argv.slice(2);
const file = args[0];
const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
};
const prompt = opt("--prompt-ids", "").split(",").filter((s) => s !== "").map(Number);
const n = Number(opt("--n", "16"));
const textsFile = opt("--texts", null);

const llama = await getLlama({gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: file});
const out = {bos: model.tokens.bos, eos: model.tokens.eos, eot: model.tokens.eot, trainContextSize: model.trainContextSize};

// logits at each prompt position, then the greedy continuation
// an F32 KV cache and no flash attention (llama.cpp defaults to an F16 cache, and its CPU
// flash attention works in F16), so an f32 export is compared at llama.cpp's best precision
const ctx = await model.createContext({contextSize: model.trainContextSize, batchSize: model.trainContextSize,
    flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
let seq = ctx.getSequence();
const res = await seq.controlledEvaluate(prompt.map((t) => [t, {generateNext: {logits: true}}]));
// (a Map token -> logit, sorted by logit: made dense, by id)
out.logits = res.map((r) => {
    const dense = new Array(r.next.logits.size).fill(null);
    for (const [t, v] of r.next.logits) dense[t] = v;
    return dense;
});
await seq.dispose();
seq = ctx.getSequence();
out.greedy = [];
for await (const t of seq.evaluate(prompt, {temperature: 0, yieldEogToken: true})) {
    out.greedy.push(t);
    if (out.greedy.length >= n) break;
}
if (textsFile) {
    out.ids = fs.readFileSync(textsFile, "utf8").split("\n").filter((l) => l.trim())
        .map((l) => Array.from(model.tokenize(JSON.parse(l).text, false)));
}
process.stdout.write(JSON.stringify(out) + "\n");
await ctx.dispose();
await model.dispose();
await llama.dispose();
