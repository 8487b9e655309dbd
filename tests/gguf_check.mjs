// gguf_check.mjs — checks one `truthgpt export gguf` file two ways:
//  1. @huggingface/gguf parses it: version 3, the gpt2 keys with the values
//     of the model's config.json, the tokenizer keys, every tensor llama.cpp's
//     gpt2 loader asks for with its shape and the type --type promises,
//     offsets aligned to 32 and the tensors packed without overlap inside
//     the file; a chat model's template renders ChatML (@huggingface/jinja).
//  2. llama.cpp itself (gguf_llama.mjs, in a child process: a bad file may
//     abort it) loads it; its greedy tokens must equal --greedy, its logits
//     at the prompt positions the reference's (--ref-logits, the "logits" and
//     "logits_ggml_gelu" rows) within --tol-exact / --tol-ggml, and its
//     tokenizer must give --ids (our tokenizer's {"ids"} lines) for --texts.
// Prints one "ok" line with the measured errors; exits 1 on any mismatch.
// Usage: node gguf_check.mjs FILE --config DIR/config.json --type f32|f16|q8_0
//          [--chat] [--prompt-ids 1,2] [--greedy 3,4 | --greedy-info 3,4] [--ref-logits FILE]
//          [--tol-exact X] [--tol-ggml X] [--texts FILE --ids FILE]
import {spawnSync} from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {gguf} from "@huggingface/gguf";
import {Template} from "@huggingface/jinja";

const args = process.argv.slice(2);
const file = args[0];
const opt = (name, dflt = null) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
};
const errors = [];
const check = (cond, msg) => { if (!cond) errors.push(msg); };
const cfg = JSON.parse(fs.readFileSync(opt("--config"), "utf8"));
const type = opt("--type");
const chat = args.includes("--chat");
const want = {f32: 0, f16: 1, q8_0: 8}[type];
if (want === undefined) throw new Error(`--type ${type}`);

// --- 1. the file as @huggingface/gguf reads it
const {metadata: md, tensorInfos, tensorDataOffset} = await gguf(path.resolve(file), {allowLocalFile: true});
const C = cfg.n_embd, L = cfg.n_layer, V = cfg.vocab_size, T = cfg.n_positions;
check(md.version === 3, `version ${md.version}`);
const keys = {
    "general.architecture": "gpt2", "general.file_type": {f32: 0, f16: 1, q8_0: 7}[type], "general.alignment": 32,
    "gpt2.context_length": T, "gpt2.embedding_length": C, "gpt2.feed_forward_length": 4 * C, "gpt2.block_count": L,
    "gpt2.attention.head_count": cfg.n_head, "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2",
    "tokenizer.ggml.bos_token_id": cfg.eos_token_id, "tokenizer.ggml.eos_token_id": cfg.eos_token_id,
};
for (const [k, v] of Object.entries(keys)) check(md[k] === v, `${k} = ${md[k]}, expected ${v}`);
check(Math.abs(md["gpt2.attention.layer_norm_epsilon"] - cfg.layer_norm_epsilon) < 1e-9, "layer_norm_epsilon");
check(md["tokenizer.ggml.tokens"]?.length === V, `tokens: ${md["tokenizer.ggml.tokens"]?.length}, expected ${V}`);
check(md["tokenizer.ggml.token_type"]?.length === V, "token_type length");
check(Array.isArray(md["tokenizer.ggml.merges"]), "no merges");
check(md["tokenizer.ggml.tokens"]?.[cfg.eos_token_id] === "<|endoftext|>", "eos token text");
check(md["tokenizer.ggml.token_type"]?.[cfg.eos_token_id] === 3, "eos is not a control token");
check(chat === (typeof md["tokenizer.chat_template"] === "string"), `chat template present: ${!chat}`);
if (chat) { // the template renders a conversation as truthgpt's ChatML (docs/inference.md)
    const msgs = [{role: "system", content: "Be brief."}, {role: "user", content: "hi"},
        {role: "assistant", content: "hello"}, {role: "user", content: "and?"}];
    const got = new Template(md["tokenizer.chat_template"]).render({messages: msgs, add_generation_prompt: true});
    const want = msgs.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join("") + "<|im_start|>assistant\n";
    check(got === want, `chat template renders ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
}

const ti = new Map(tensorInfos.map((t) => [t.name, t]));
check(tensorInfos.length === 4 + 12 * L, `${tensorInfos.length} tensors, expected ${4 + 12 * L}`);
const matrix = (name, ne0) => (want === 8 && ne0 % 32 !== 0 ? 1 : want); // q8_0 falls back to f16
const expect = [["token_embd.weight", [C, V], matrix("", C)], ["position_embd.weight", [C, T], 0],
    ["output_norm.weight", [C], 0], ["output_norm.bias", [C], 0]];
for (let l = 0; l < L; l++) {
    const b = `blk.${l}.`;
    expect.push([b + "attn_norm.weight", [C], 0], [b + "attn_norm.bias", [C], 0],
        [b + "attn_qkv.weight", [C, 3 * C], matrix("", C)], [b + "attn_qkv.bias", [3 * C], 0],
        [b + "attn_output.weight", [C, C], matrix("", C)], [b + "attn_output.bias", [C], 0],
        [b + "ffn_norm.weight", [C], 0], [b + "ffn_norm.bias", [C], 0],
        [b + "ffn_up.weight", [C, 4 * C], matrix("", C)], [b + "ffn_up.bias", [4 * C], 0],
        [b + "ffn_down.weight", [4 * C, C], matrix("", 4 * C)], [b + "ffn_down.bias", [C], 0]);
}
const bytes = (dt, ne) => {
    const n = ne.reduce((a, b) => a * b, 1);
    return dt === 0 ? 4 * n : dt === 1 ? 2 * n : (n / 32) * 34;
};
const spans = [];
for (const [name, shape, dt] of expect) {
    const t = ti.get(name);
    if (!t) { errors.push(`missing tensor ${name}`); continue; }
    const ne = t.shape.map(Number);
    check(JSON.stringify(ne) === JSON.stringify(shape), `${name}: shape ${ne}, expected ${shape}`);
    check(t.dtype === dt, `${name}: type ${t.dtype}, expected ${dt}`);
    check(Number(t.offset) % 32 === 0, `${name}: offset ${t.offset} not aligned to 32`);
    spans.push([Number(t.offset), Number(t.offset) + bytes(t.dtype, ne), name]);
}
check(Number(tensorDataOffset) % 32 === 0, `data offset ${tensorDataOffset} not aligned`);
spans.sort((a, b) => a[0] - b[0]);
for (let i = 1; i < spans.length; i++)
    check(spans[i][0] >= spans[i - 1][1], `${spans[i][2]} overlaps ${spans[i - 1][2]}`);
const size = fs.statSync(file).size;
check(Number(tensorDataOffset) + spans[spans.length - 1][1] <= size, "tensor data runs past the end of the file");

// --- 2. llama.cpp, in a child process
const here = path.dirname(fileURLToPath(import.meta.url));
const prompt = opt("--prompt-ids", String(cfg.eos_token_id));
const greedyWant = opt("--greedy");
const greedyInfo = opt("--greedy-info"); // ours, only reported: how many leading tokens agree
const n = (greedyWant || greedyInfo) ? (greedyWant || greedyInfo).split(",").length : 8;
const childArgs = [path.join(here, "gguf_llama.mjs"), file, "--prompt-ids", prompt, "--n", String(n)];
if (opt("--texts")) childArgs.push("--texts", opt("--texts"));
const child = spawnSync(process.execPath, childArgs, {encoding: "utf8", timeout: 300000, maxBuffer: 1 << 28});
let got = null;
if (child.status !== 0) errors.push(`llama.cpp failed on ${file} (status ${child.status}, signal ${child.signal}): ${child.stderr.slice(-2000)}`);
else got = JSON.parse(child.stdout);
let summary = "";
if (got) {
    check(got.eos === cfg.eos_token_id, `llama.cpp's eos ${got.eos}`);
    if (greedyWant) {
        check(got.greedy.join(",") === greedyWant, `greedy tokens differ:\n  llama.cpp ${got.greedy.join(",")}\n  truthgpt  ${greedyWant}`);
        summary += ` greedy ${got.greedy.length} tokens equal;`;
    }
    if (greedyInfo) {
        const ours = greedyInfo.split(",").map(Number);
        let k = 0;
        while (k < ours.length && got.greedy[k] === ours[k]) k++;
        summary += ` greedy: the first ${k} of ${ours.length} tokens equal ours (not required for ${type});`;
    }
    if (opt("--ref-logits")) {
        const ref = JSON.parse(fs.readFileSync(opt("--ref-logits"), "utf8"));
        check(ref.prompt.join(",") === prompt, "--ref-logits is for another prompt");
        for (const [key, tol] of [["logits", Number(opt("--tol-exact", "0"))], ["logits_ggml_gelu", Number(opt("--tol-ggml", "0"))]]) {
            if (!tol) continue;
            let m = 0;
            ref[key].forEach((row, p) => row.forEach((v, i) => { m = Math.max(m, Math.abs(got.logits[p][i] - v)); }));
            check(m <= tol, `max |logit error| vs ${key}: ${m.toExponential(3)} > ${tol}`);
            summary += ` max |logit error| vs ${key} ${m.toExponential(2)} (bound ${tol});`;
        }
    }
    if (opt("--ids")) {
        const ours = fs.readFileSync(opt("--ids"), "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l).ids);
        check(ours.length === got.ids.length, `${got.ids.length} texts tokenized, ${ours.length} expected`);
        let same = 0;
        ours.forEach((ids, i) => {
            if (ids.join(",") === got.ids[i].join(",")) same++;
            else if (errors.length < 5) errors.push(`text ${i}: llama.cpp ${got.ids[i].slice(0, 20)}, ours ${ids.slice(0, 20)}`);
        });
        summary += ` tokenizer: ${same} of ${ours.length} texts give our ids;`;
    }
}
if (errors.length) {
    console.error(`FAIL ${file}:\n  ` + errors.join("\n  "));
    process.exit(1);
}
console.log(`ok ${path.basename(file)} (${type}, ${(size / 1e6).toFixed(2)} MB): parsed;${summary}`);
