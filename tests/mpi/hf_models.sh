#!/usr/bin/env bash
# init --hf CONFIG end to end (docs/models.md): for every small example config, the directory written
# by one process, and under mpirun at 1, 2, 3 and 4 ranks with tensor-parallel (GPT-2's fused c_attn
# too), pipeline, data and (Mixtral) expert layouts, is the same bytes (config.json, the manifest kept beside the weights, the weights; one file
# and HF-sharded); verify --hf and verify of the kept manifest accept it at another rank count; a fault
# on one rank during the write leaves nothing; bad configs and options exit 2 and write nothing; the
# manifest command writes atomically and refuses to replace without --force.
#
#   hf_models.sh SHARDINIT MPIEXEC EXAMPLES_HF_DIR SCRATCH_DIR
#
# Prints "FAIL: ..." for every failed check and "hf_models: P passed, F failed" at the end.
set -u

shardinit=$(realpath "$1")
mpiexec=$(command -v "$2")
configs=$(realpath "$3")
scratch=$(realpath -m "$4")

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() {
  failed=$((failed + 1))
  echo "FAIL: $*"
}
check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then pass; else fail "$what"; fi
}
# mpirun forwards its standard input to rank 0: never let it read a loop's input (it would eat the
# rest of the list, and the loop would run once).
mpirun_n() {
  local n=$1
  shift
  timeout 120 "$mpiexec" -n "$n" --oversubscribe "$@" </dev/null
}
plain() { env -u OMPI_COMM_WORLD_SIZE -u PMIX_RANK -u PMI_RANK -u PMI_SIZE -u RANK -u WORLD_SIZE -u SLURM_PROCID -u SLURM_NTASKS "$@"; }

rm -rf "$scratch"
mkdir -p "$scratch"
cd "$scratch" || exit 1

# The launches of each model: "RANKS OPTIONS...".
launches() {
  case $1 in
    tiny-gpt2) printf '%s\n' "1" "2 --pp 2" "3" "4 --pp 2 --dp 2" "2 --tp 2" "4 --tp 4" "4 --tp 2 --pp 2" ;;
    tiny-mixtral) printf '%s\n' "1" "2 --tp 2" "3" "4 --tp 2 --pp 2" "4 --tp 2 --ep 2" "4 --ep 4" "4 --ep 2 --pp 2" ;;
    tiny-llama) printf '%s\n' "1" "2 --tp 2" "3" "4 --tp 2 --pp 2" "4 --tp 4" "4 --pp 2 --dp 2" ;;
    *) printf '%s\n' "1" "2 --tp 2" "3" "4 --tp 2 --pp 2" ;;  # 2 key/value heads: --tp 4 cannot split them
  esac
}

for model in tiny-llama tiny-qwen2 tiny-mistral tiny-mixtral tiny-gpt2; do
  config=$configs/$model/config.json
  plain "$shardinit" init -q --hf "$config" -o "$model.one" 2>"$model.one.err"
  check "$model: init --hf alone: $(head -c 300 "$model.one.err")" test -f "$model.one/model.safetensors"
  check "$model: config.json copied" cmp -s "$config" "$model.one/config.json"
  check "$model: the kept manifest is what 'manifest --hf' prints" \
    cmp -s <(plain "$shardinit" manifest --hf "$config") "$model.one/shardinit-manifest.json"
  check "$model: only config, manifest and weights ($(ls "$model.one" | tr '\n' ' '))" \
    test "$(ls "$model.one" | tr '\n' ' ')" = "config.json model.safetensors shardinit-manifest.json "
  while read -r np options; do
    label="$model.np$np$(echo "$options" | tr -d ' -')"
    # shellcheck disable=SC2086  # the options are words
    mpirun_n "$np" "$shardinit" init -q --hf "$config" $options -o "$label" 2>"$label.err"
    check "$label: mpirun -n $np init --hf $options (rc $?): $(head -c 300 "$label.err")" test -d "$label"
    check "$label: the same directory as one process's" diff -r "$model.one" "$label"
  done < <(launches "$model")
  check "$model: every launch ran ($(ls -d "$model".np*/ 2>/dev/null | wc -l) directories)" \
    test "$(ls -d "$model".np*/ 2>/dev/null | wc -l)" -eq "$(launches "$model" | wc -l)"
  # HF-sharded (many shards and the index) at 1 and 4 ranks.
  plain "$shardinit" init -q --hf "$config" --max-shard-size 20KB -o "$model.sharded1" 2>/dev/null
  mpirun_n 4 "$shardinit" init -q --hf "$config" --max-shard-size 20KB -o "$model.sharded4" 2>"$model.sharded4.err"
  check "$model: sharded, with an index" test -f "$model.sharded1/model.safetensors.index.json"
  check "$model: sharded at 4 ranks, the same: $(head -c 300 "$model.sharded4.err")" diff -r "$model.sharded1" "$model.sharded4"
  # Checked again, by the config and by the manifest kept beside the weights, at other rank counts.
  mpirun_n 3 "$shardinit" verify -q --hf "$config" "$model.one" 2>"$model.verify.err"
  check "$model: verify --hf at 3 ranks (rc $?): $(head -c 300 "$model.verify.err")" test ! -s "$model.verify.err"
  mpirun_n 2 "$shardinit" verify -q --max-shard-size 20KB "$model.sharded1/shardinit-manifest.json" "$model.sharded1" 2>"$model.verify2.err"
  check "$model: verify of the kept manifest at 2 ranks (rc $?): $(head -c 300 "$model.verify2.err")" test ! -s "$model.verify2.err"
  # Without --max-shard-size: read as the index splits it (rank 0 reads the index for all ranks).
  mpirun_n 3 "$shardinit" verify -q "$model.sharded1/shardinit-manifest.json" "$model.sharded1" 2>"$model.verify3.err"
  check "$model: verify of the sharded directory without its size at 3 ranks (rc $?): $(head -c 300 "$model.verify3.err")" test ! -s "$model.verify3.err"
  plain "$shardinit" verify -q --hf "$config" "$model.sharded1" 2>"$model.verify1.err"
  check "$model: verify --hf of the sharded directory without its size (rc $?): $(head -c 300 "$model.verify1.err")" test ! -s "$model.verify1.err"
done

# Mixtral's experts over the expert axis, per-rank files: at 4 ranks with --tp 2 --ep 2 (the mesh
# [edp 1, ep 2, tp 2]: rank = 2 ep + tp) ranks 0-1 hold experts 0-1 of each layer, ranks 2-3 experts
# 2-3, each the rank's half of every matrix; the dense tensors are on every rank.
mixtral=$configs/tiny-mixtral/config.json
mpirun_n 4 "$shardinit" init -q --hf "$mixtral" --tp 2 --ep 2 --per-rank ep.ranks 2>ep.err
check "per-rank --tp 2 --ep 2: written: $(head -c 300 ep.err)" test -f ep.ranks/rank-00003-of-00004.safetensors
for rank in 0 1 2 3; do
  file=ep.ranks/rank-0000$rank-of-00004.safetensors
  experts=$(plain "$shardinit" inspect "$file" | grep -o 'experts\.[0-9]*\.w[123]' | sort -u | sed 's/experts\.//' | tr '\n' ' ')
  if [ "$rank" -lt 2 ]; then want="0.w1 0.w2 0.w3 1.w1 1.w2 1.w3 "; else want="2.w1 2.w2 2.w3 3.w1 3.w2 3.w3 "; fi
  check "rank $rank holds the experts of its expert rank ($experts)" test "$experts" = "$want"
  check "rank $rank holds 12 expert matrices of 32 rows (its half)" \
    test "$(plain "$shardinit" inspect "$file" | grep -c 'experts\..*\[32, 32\]')" -eq 12
  check "rank $rank holds the router and the norms" \
    test "$(plain "$shardinit" inspect "$file" | grep -cE 'block_sparse_moe\.gate|layernorm|model\.norm')" -eq 7
done
mpirun_n 4 "$shardinit" verify -q --hf "$mixtral" --tp 2 --ep 2 --per-rank ep.ranks 2>ep.verify.err
check "per-rank --tp 2 --ep 2: verifies (rc $?): $(head -c 300 ep.verify.err)" test ! -s ep.verify.err

# GPT-2 under --tp 4, per-rank files: c_attn (32, 96) is q, k and v side by side, and each rank holds
# its quarter of each, (32, 24) (Colossal-AI's GPT2FusedLinearConv1D_Col; the values are checked
# against the split in tests/python/test_torch_models.py); c_proj is split by its input rows.
gpt2=$configs/tiny-gpt2/config.json
mpirun_n 4 "$shardinit" init -q --hf "$gpt2" --tp 4 --per-rank gpt2.ranks 2>gpt2.err
check "GPT-2 per-rank --tp 4: written: $(head -c 300 gpt2.err)" test -f gpt2.ranks/rank-00003-of-00004.safetensors
shapes=$(plain "$shardinit" inspect gpt2.ranks/rank-00002-of-00004.safetensors | grep -E 'h\.0\.(attn|mlp)\.' | tr -s ' ' | tr '\n' ';')
check "GPT-2 rank 2's attention and MLP shapes ($shapes)" test "$shapes" = \
  "transformer.h.0.attn.c_attn.bias f32 [24];transformer.h.0.attn.c_attn.weight f32 [32, 24];transformer.h.0.attn.c_proj.bias f32 [32];transformer.h.0.attn.c_proj.weight f32 [8, 32];transformer.h.0.mlp.c_fc.bias f32 [32];transformer.h.0.mlp.c_fc.weight f32 [32, 32];transformer.h.0.mlp.c_proj.bias f32 [32];transformer.h.0.mlp.c_proj.weight f32 [32, 32];"
mpirun_n 4 "$shardinit" verify -q --hf "$gpt2" --tp 4 --per-rank gpt2.ranks 2>gpt2.verify.err
check "GPT-2 per-rank --tp 4: verifies (rc $?): $(head -c 300 gpt2.verify.err)" test ! -s gpt2.verify.err

# verify --hf notices other init rules (the kept manifest differs), and a changed weight.
plain "$shardinit" verify -q --hf "$configs/tiny-llama/config.json" --init colossal tiny-llama.one 2>colossal.err
rc=$?
check "verify --hf --init colossal of an hf-initialized directory: exit 1 (rc $rc)" test "$rc" -eq 1
check "verify names the kept manifest: $(head -c 300 colossal.err)" grep -q "shardinit-manifest.json differs" colossal.err

# A fault on one rank while the directory is written: exit non-zero, nothing left (no staging either).
for site in fill write; do
  mkdir -p "fault.$site"
  SHARDINIT_FAULT=$site@1 mpirun_n 2 "$shardinit" init -q --hf "$configs/tiny-llama/config.json" --tp 2 \
    --max-shard-size 20KB -o "fault.$site/out" >/dev/null 2>"fault.$site.err"
  rc=$?
  check "fault $site@1 during init --hf: exit 3 (rc $rc): $(head -c 300 "fault.$site.err")" test "$rc" -eq 3
  check "fault $site@1: nothing left ($(ls -A "fault.$site" | tr '\n' ' '))" test -z "$(ls -A "fault.$site")"
done

# Bad configs and options: exit 2 (3 for a config that cannot be read), the value named, nothing written.
mkdir -p bad
printf '{"architectures": ["BertModel"], "hidden_size": 64}\n' >bad/bert.json
printf '{"model_type": "llama", "num_attention_heads": 32, "num_key_value_heads": 6}\n' >bad/kv.json
expect_refusal() {  # expect_refusal LABEL TEXT COMMAND... (exit 2; EXPECTED_RC=3 for an unreadable input)
  local label=$1 text=$2 expected=${EXPECTED_RC:-2}
  shift 2
  "$@" >"bad/$label.out" 2>"bad/$label.err"
  local rc=$?
  check "$label: exit $expected (rc $rc)" test "$rc" -eq "$expected"
  check "$label: says '$text': $(head -c 300 "bad/$label.err")" grep -qF -- "$text" "bad/$label.err"
  check "$label: no output directory" test ! -e "bad/$label.dir"
}
expect_refusal bert "supported: LlamaForCausalLM" plain "$shardinit" init --hf bad/bert.json -o bad/bert.dir
expect_refusal bert-mpi "supported: LlamaForCausalLM" mpirun_n 3 "$shardinit" init --hf bad/bert.json -o bad/bert-mpi.dir
expect_refusal kv '"num_key_value_heads" must divide num_attention_heads (32): 6' plain "$shardinit" init --hf bad/kv.json -o bad/kv.dir
printf '{"model_type": "gpt2", "n_embd": 32, "n_head": 4, "n_inner": 30, "n_layer": 1}\n' >bad/gpt2-inner.json
expect_refusal gpt2-inner "n_inner 30 is not divisible by the tensor-parallel size 4" \
  mpirun_n 4 "$shardinit" init --hf bad/gpt2-inner.json --tp 4 -o bad/gpt2-inner.dir
expect_refusal tp-mesh "ranks" mpirun_n 3 "$shardinit" init --hf "$configs/tiny-llama/config.json" --tp 2 -o bad/tp-mesh.dir
expect_refusal tp-mode "--tp-mode \"2d\" is not supported for --hf" \
  plain "$shardinit" init --hf "$configs/tiny-llama/config.json" --tp-mode 2d -o bad/tp-mode.dir
expect_refusal format "--hf makes a Hugging Face directory (--format hf), not --format \"safetensors\"" \
  plain "$shardinit" init --hf "$configs/tiny-llama/config.json" --format safetensors -o bad/format.dir
expect_refusal init-rule "--init \"kaiming\" is not a rule set" \
  plain "$shardinit" init --hf "$configs/tiny-llama/config.json" --init kaiming -o bad/init-rule.dir
expect_refusal both "two sources of tensors" plain "$shardinit" init bad/kv.json --hf "$configs/tiny-llama/config.json" -o bad/both.dir
EXPECTED_RC=3 expect_refusal no-config "cannot read model config" plain "$shardinit" init --hf bad/missing.json -o bad/no-config.dir
expect_refusal ep-dense "--ep 2 needs a mixture of experts (LlamaForCausalLM has no experts" \
  mpirun_n 2 "$shardinit" init --hf "$configs/tiny-llama/config.json" --ep 2 -o bad/ep-dense.dir
expect_refusal ep-experts "num_local_experts 4 is not divisible by the expert parallel size 3" \
  plain "$shardinit" init --hf "$mixtral" --ep 3 -o bad/ep-experts.dir
expect_refusal ep-dp "--ep 2 must divide the data-parallel size 3 (--dp)" \
  plain "$shardinit" manifest --hf "$mixtral" --ep 2 --dp 3 -o bad/ep-dp.dir
expect_refusal ep-world "the expert parallel size 2 does not divide the data parallel size 3" \
  mpirun_n 3 "$shardinit" init --hf "$mixtral" --ep 2 -o bad/ep-world.dir
expect_refusal ep-without-hf "--ep: is an option of --hf CONFIG" plain "$shardinit" init bad/kv.json --ep 2 -o bad/ep-without-hf.dir
expect_refusal tp-without-hf "--tp: is an option of --hf CONFIG" plain "$shardinit" init bad/kv.json --tp 2 -o bad/tp-without-hf.dir
# The config cannot be replaced by the output (it is an input of the run).
mkdir -p own && cp "$configs/tiny-llama/config.json" own/config.json
plain "$shardinit" init -q -f --hf own/config.json -o own >/dev/null 2>own.err
rc=$?
check "init --hf DIR/config.json -o DIR --force: refused (rc $rc): $(head -c 300 own.err)" test "$rc" -ne 0
check "the config is untouched" cmp -s "$configs/tiny-llama/config.json" own/config.json

# shardinit manifest: -o writes the file whole, refuses to replace it without --force.
plain "$shardinit" manifest --hf "$configs/tiny-mixtral/config.json" --tp 2 -o m.json 2>m.err
check "manifest -o: written: $(head -c 300 m.err)" cmp -s m.json <(plain "$shardinit" manifest --hf "$configs/tiny-mixtral/config.json" --tp 2)
plain "$shardinit" manifest --hf "$configs/tiny-llama/config.json" -o m.json 2>m2.err
rc=$?
check "manifest -o over a file: refused (rc $rc)" test "$rc" -eq 3
check "manifest -o over a file: untouched" cmp -s m.json <(plain "$shardinit" manifest --hf "$configs/tiny-mixtral/config.json" --tp 2)
plain "$shardinit" manifest --hf "$configs/tiny-llama/config.json" -o m.json --force 2>/dev/null
check "manifest -o --force: replaced" cmp -s m.json <(plain "$shardinit" manifest --hf "$configs/tiny-llama/config.json")
mpirun_n 2 "$shardinit" manifest --hf "$configs/tiny-llama/config.json" >m-mpi.json 2>m-mpi.err
check "manifest under mpirun: printed once: $(head -c 300 m-mpi.err)" cmp -s m-mpi.json m.json

echo "hf_models: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
