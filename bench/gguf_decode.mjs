// gguf_decode.mjs — llama.cpp's greedy decode speed on a GGUF file
// (node-llama-cpp's CPU prebuilt, from tests/node_modules), for
// bench/gguf_decode.sh. Prints one JSON line: {"tok_per_s", "tokens", "threads"}.
// Usage: node bench/gguf_decode.mjs FILE N THREADS PROMPT_ID
import {getLlama, LlamaLogLevel} from "../tests/node_modules/node-llama-cpp/dist/index.js";

const [file, n, threads, promptId] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const llama = await getLlama({gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: file});
const ctx = await model.createContext({contextSize: Math.min(model.trainContextSize, n + 8), threads});
const seq = ctx.getSequence();
let k = 0;
const t0 = performance.now();
for await (const t of seq.evaluate([promptId], {temperature: 0, yieldEogToken: true})) {
    void t;
    if (++k >= n) break;
}
const dt = (performance.now() - t0) / 1000;
console.log(JSON.stringify({tok_per_s: k / dt, tokens: k, threads}));
await ctx.dispose();
await model.dispose();
await llama.dispose();
