/*
 * checkpoint_verify.h — the checks a checkpoint passes before anything is
 * allocated from it or trusted in it (docs/formats.md, checkpoints):
 *
 *   - config.json against model.safetensors' header (layers, width,
 *     context, vocabulary), so a config asking for 3000 layers fails in
 *     microseconds instead of allocating gigabytes first;
 *   - no NaN or Inf in any weight, named by tensor and element;
 *   - SHA-256 sums of the checkpoint's files (sha256sums.txt, written last
 *     into the temporary directory), checked when the checkpoint is chosen;
 *   - stale temporary files of an interrupted write, removed at the next
 *     start.
 */
#ifndef TG_CHECKPOINT_VERIFY_H
#define TG_CHECKPOINT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "truthgpt.h"

/* The sums file of a checkpoint directory: "<64 hex>  <name>\n" lines, the
 * format of sha256sum(1), so `sha256sum -c sha256sums.txt` checks it too. */
#define TG_CHECKPOINT_SUMS "sha256sums.txt"

/* Checks dir/model.safetensors' header against cfg (probing the tensors whose
 * shapes depend on every config field: wte, wpe, the first and the last
 * layer, ln_f) and every float tensor for NaN/Inf. Reads the header and
 * scans the weights once from the mapping (memory speed, ~0.1 s/GB), and
 * allocates nothing proportional to the config. TG_ERR_INPUT naming the file
 * and the tensor. */
int tg_checkpoint_check_weights(const char *dir, const tg_config *cfg);

/* Writes dir/sha256sums.txt with the SHA-256 of every regular file in dir
 * (sorted by name, the sums file itself excepted), atomically. */
int tg_checkpoint_write_sums(const char *dir);

/* Checks dir against its sha256sums.txt: every listed file present with
 * that hash. A checkpoint without a sums file (older runs, Hugging Face
 * directories) passes; *had_sums says which (may be NULL). TG_ERR_INPUT
 * naming the file that differs or is missing. */
int tg_checkpoint_verify_sums(const char *dir, int *had_sums);

/* tg_checkpoint_verify_sums, skipped when this thread has just verified the
 * same directory and its sums file is unchanged. */
int tg_checkpoint_verify_sums_cached(const char *dir);

/* Whether checkpoint directory dir can be trusted: config.json and
 * model.safetensors present, trainer_state.json and optimizer.safetensors
 * both or neither, model.safetensors' header and sizes sound (a truncated
 * file fails), and its sums (when it has them) matching. TG_ERR_INPUT
 * naming the file and the reason. Costs a SHA-256 pass over the files
 * (about 1 s per GB). */
int tg_checkpoint_check_complete(const char *dir);

/* The step of a "checkpoint-<digits>" directory name, or -1. */
int64_t tg_checkpoint_dir_step(const char *name);

/* How many checkpoint-<digits> entries run_dir holds (sound or not). */
int tg_run_count_checkpoints(const char *run_dir);

/* Removes what an interrupted write leaves in a run directory:
 * checkpoint-*.tmp directories, checkpoint-*.old ones (put back as
 * checkpoint-N when that is missing: then they are the only copy), and
 * <file>.tmp.<pid> files whose writer is dead (loss.svg.tmp.123). Returns
 * how many were removed. */
int tg_run_remove_stale(const char *run_dir);

/* rm -rf of a directory truthgpt created (a checkpoint or its temporary);
 * TG_OK when path does not exist. */
int tg_remove_tree(const char *path);

#endif /* TG_CHECKPOINT_VERIFY_H */
