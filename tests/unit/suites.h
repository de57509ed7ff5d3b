/* Every Check suite of the unit test runner; one per module. */
#ifndef SLIM_TESTS_SUITES_H
#define SLIM_TESTS_SUITES_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

Suite *suite_core(void);           /* test_core.c: errors, fp16, threadpool */
Suite *suite_quant(void);          /* test_quant.c: every format vs the gguf package */
Suite *suite_cpu(void);            /* test_cpu.c: CPU backend SIMD ops vs double references */
Suite *suite_gguf(void);           /* test_gguf.c: reader, malformed corpus */
Suite *suite_json(void);           /* test_json.c: parser, config getters, malformed corpus */
Suite *suite_safetensors(void);    /* test_safetensors.c: files, shards, dirs, malformed */
Suite *suite_tokenizer(void);      /* test_tokenizer.c: SentencePiece and BPE vs llama.cpp */
Suite *suite_tokenizer_refs(void); /* test_tokenizer_refs.c: Llama 3, Nemo, Mistral v3, Phi-4
                                      vs their reference libraries */
Suite *suite_sampler(void);        /* test_sampler.c */
Suite *suite_model(void);          /* test_model.c: forward pass vs llama.cpp golden logits */
Suite *suite_arch(void); /* test_arch.c: synthetic models of every architecture vs llama.cpp */
Suite *suite_api(void);  /* test_api.c: public API argument checks, generate */
Suite *suite_cli(void);  /* test_cli.c: the slim CLI end to end */
Suite *suite_chat(void); /* test_chat.c: chat templates vs jinja2, truncate, slim chat */
Suite *suite_hf_tokenizer(void); /* test_hf_tokenizer.c: tokenizer.json vs `tokenizers` */
Suite *suite_hf_model(void);     /* test_hf_model.c: Hugging Face directories vs transformers */
Suite *suite_lora(void);    /* test_lora.c: LoRA adapters vs llama.cpp and PEFT, attach/detach */
Suite *suite_convert(void); /* test_convert.c: GGUF writer, quantizers, slim convert */
/* test_weight_type.c: quantize at load vs slim convert, every way */
Suite *suite_weight_type(void);
Suite *suite_batch(void);        /* test_batch.c: bitwise batch invariance of the forward step */
Suite *suite_kv_pool(void);      /* test_kv_pool.c: paged KV block manager, prefix cache */
Suite *suite_engine(void);       /* test_engine.c: batched engine: scheduler, requests, API */
Suite *suite_constrain(void);    /* test_constrain.c: grammars, regex, JSON Schema, token masks */
Suite *suite_repack_model(void); /* test_repack_model.c: repacked == plain kernels, whole models */

/* A whole file read into a malloc'd buffer (one spare byte); fails the test
 * if it cannot be read. */
uint8_t *test_read_whole(const char *path, size_t *size);

/* Index of the largest of n values (the first on ties). */
int32_t test_argmax(const float *x, int32_t n);

/* Path of the default model (SLIM_TEST_MODEL, else models/gemma-3-270m-q4_k_m.gguf). */
const char *test_model_path(void);
/* Path of SmolLM2-135M-Instruct Q4_1 (SLIM_TEST_MODEL_SMOLLM2, else models/...). */
const char *test_model_path_smollm2(void);

#endif
