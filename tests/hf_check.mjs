// hf_check.mjs — an independent reader of our tokenizer.json: the tokenizer
// of npm's @huggingface/transformers, loaded from a local directory with
// remote loading off, must give the same ids as ours for every text.
//
// usage: node tests/hf_check.mjs DIR TEXTS.jsonl OURS.jsonl
//   DIR         holds our tokenizer.json (a tokenizer_config.json is added
//               when missing: transformers.js needs one)
//   TEXTS.jsonl {"text": ...} lines
//   OURS.jsonl  {"ids": [...]} lines from `truthgpt tokenizer encode --jsonl
//               --special` (Hugging Face always splits added tokens out)
// Exits 1 on any difference.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, 'package.json'));
const { AutoTokenizer, env } = await import(require.resolve('@huggingface/transformers'));

const [dir, textsPath, oursPath] = process.argv.slice(2);
if (!dir || !textsPath || !oursPath) {
  console.error('usage: node tests/hf_check.mjs DIR TEXTS.jsonl OURS.jsonl');
  process.exit(2);
}
const cfg = path.join(dir, 'tokenizer_config.json');
if (!fs.existsSync(cfg)) {
  fs.writeFileSync(cfg, JSON.stringify({ tokenizer_class: 'PreTrainedTokenizerFast', model_max_length: 1e9,
    clean_up_tokenization_spaces: false }));
}
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = path.dirname(path.resolve(dir)) + '/';
const tok = await AutoTokenizer.from_pretrained(path.basename(path.resolve(dir)), { local_files_only: true });

const lines = (p) => fs.readFileSync(p, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const texts = lines(textsPath), ours = lines(oursPath);
if (texts.length !== ours.length) {
  console.error(`hf_check: ${texts.length} texts but ${ours.length} lines of ids`);
  process.exit(1);
}
let same = 0, shown = 0;
for (let i = 0; i < texts.length; i++) {
  const hf = tok.encode(texts[i].text, { add_special_tokens: false });
  const a = ours[i].ids;
  if (hf.length === a.length && hf.every((x, k) => x === a[k])) same++;
  else if (shown++ < 5) console.error(`differs on ${JSON.stringify(texts[i].text.slice(0, 60))}: ours ${a.slice(0, 12)} hf ${hf.slice(0, 12)}`);
  // and the decoder: HF's text from our ids is the text
  if (i < 200) {
    const back = tok.decode(a, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    if (back !== texts[i].text && shown++ < 5) console.error(`decode differs on ${JSON.stringify(texts[i].text.slice(0, 60))}`);
    else if (back !== texts[i].text) shown++;
  }
}
console.log(`@huggingface/transformers ${tok.constructor.name} from ${dir}/tokenizer.json: ${same} of ${texts.length} texts give identical ids`);
process.exit(same === texts.length && shown === 0 ? 0 : 1);
