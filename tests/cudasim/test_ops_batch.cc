// test_ops_batch.cc: the batched step on the whole CUDA backend (lib/backend/
// cuda over the emulated kernels and cudart stand-ins) through
// slim_forward_step, against the CPU backend and against itself:
//
//  - graphs: decode steps of 1..4 sequences over scattered block tables,
//    padded to their batch-size bucket, recorded once per bucket and replayed
//    as positions, tables and the sequences in the step change (a sequence
//    joins mid-way), between eager mixed prefill + decode steps (a prompt
//    chunk wants only its last token's logits, as the engine's do).  Every row
//    bitwise the same as with SLIM_CUDA_GRAPHS=0 (every step eager), and
//    top-1 the CPU's within BACKEND_COMPARE_TOL_FLOAT; the emulator's counters
//    show the recordings and replays.  The seven synthetic models.
//  - mixed adapters: sequences with different LoRA adapters (and none) in one
//    step: gathered rows per adapter, scatter-added (rows.cu), against the CPU
//    backend doing the same, and the llama3 sequence with adapter a against
//    llama.cpp's golden logits (tools/golden/gen_lora.py) as test_ops_lora.cc.
//  - invariance (SLIM_CUDA_INVARIANT=1): every sequence's logits at every
//    position memcmp-equal whether it ran alone (one prefill, then single
//    decodes), in a batch with the others (prefill chunked at odd sizes,
//    decodes of several sequences, graphs replayed), or chunked otherwise over
//    other block ids; for the synthetic models (F32 weights: the f32 GEMM),
//    llama3 with Q8_0 / Q4_0 / Q4_K weights (the quantized GEMM paths) and
//    llama3 with mixed adapters; and slim_context's single-sequence API
//    (prefill, then slim_decode: its recorded graph) equal to the paged
//    steps for sequence 0.  Without the mode the single-token mat-vec
//    differs from the GEMM: the same check finds differing rows (float
//    weights; a quantized synthetic row has too few blocks to show it).
// The emulator runs deferred with device memory protected from host access.
#include "cudasim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backend_compare.h"
#include "slim.h"
#include "test_harness.h"

extern "C" {
#include "runtime/step.h"
slim_status slim_context_create_paged(const slim_model *m, const slim_context_params *p,
                                      int32_t block_size, int32_t n_blocks, slim_context **out);
}

namespace {

constexpr int32_t BS = 8, POOL = 48, MAX_POS = 64;

struct Part {
    int32_t seq, first, count;
};
using Step = std::vector<Part>;

struct Setup {
    std::string model;
    const char *weight_type = nullptr;
    std::vector<std::pair<std::string, float>> loras; // attached in this order
    std::vector<int32_t> seq_lora;                    // per sequence: index or SLIM_STEP_LORA_NONE
    std::vector<std::vector<int32_t>> tokens;         // per sequence
    bool want_all = true; // else a prompt chunk wants its last token only (an engine's steps)
};

using Rows = std::map<std::pair<int32_t, int32_t>, std::vector<float>>; // (seq, pos) -> logits

struct Env {
    const char *name, *value;
};

// Runs the steps on a fresh context; every token's logits go into *rows.
bool run_steps(const Setup &su, int backend, const std::vector<Step> &steps, uint32_t table_seed,
               const std::vector<Env> &env, Rows *rows, std::string *why) {
    for (const Env &e : env)
        setenv(e.name, e.value, 1);
    slim_model_params mp = slim_model_default_params();
    mp.backend = backend;
    mp.weight_type = su.weight_type;
    slim_model *m = nullptr;
    slim_context *ctx = nullptr;
    std::vector<slim_lora *> loras;
    bool ok = slim_model_load(su.model.c_str(), &mp, &m) == SLIM_OK;
    slim_model_info info{};
    info.struct_size = sizeof info;
    if (ok) {
        slim_model_get_info(m, &info);
        slim_context_params cp = slim_context_default_params();
        cp.n_ctx = MAX_POS;
        cp.n_batch = 32;
        cp.n_threads = 1;
        ok = slim_context_create_paged(m, &cp, BS, POOL, &ctx) == SLIM_OK;
    }
    for (const auto &l : su.loras) {
        slim_lora *lo = nullptr;
        ok = ok && slim_lora_load(m, ("tests/data/" + l.first).c_str(), &lo) == SLIM_OK;
        if (lo) loras.push_back(lo);
        ok = ok && slim_context_attach_lora(ctx, lo, l.second) == SLIM_OK;
    }
    for (const Env &e : env)
        unsetenv(e.name);
    if (!ok) *why = std::string("set-up: ") + slim_last_error();
    // Block tables: a seeded shuffle of the pool, MAX_POS / BS blocks each.
    const int32_t S = (int32_t)su.tokens.size(), per = MAX_POS / BS;
    std::vector<int32_t> perm(POOL);
    for (int32_t i = 0; i < POOL; i++)
        perm[i] = i;
    uint32_t r = table_seed * 2654435761u + 1;
    for (int32_t i = POOL - 1; i > 0; i--) {
        r = r * 1664525u + 1013904223u;
        std::swap(perm[i], perm[(r >> 8) % (uint32_t)(i + 1)]);
    }
    std::vector<slim_step_seq> seqs(S);
    for (int32_t s = 0; s < S; s++)
        seqs[s] = {perm.data() + s * per, per,
                   su.seq_lora.empty() ? SLIM_STEP_LORA_NONE : su.seq_lora[s]};
    for (size_t k = 0; ok && k < steps.size(); k++) {
        std::vector<int32_t> tk, pos, sq;
        std::vector<uint8_t> want;
        for (const Part &p : steps[k])
            for (int32_t j = 0; j < p.count; j++) {
                tk.push_back(su.tokens[p.seq][p.first + j]);
                pos.push_back(p.first + j);
                sq.push_back(p.seq);
                want.push_back(su.want_all || j == p.count - 1);
            }
        std::vector<float> logits(tk.size() * (size_t)info.n_vocab);
        slim_step step{};
        step.n_tokens = (int32_t)tk.size();
        step.tokens = tk.data();
        step.pos = pos.data();
        step.seq = sq.data();
        step.want = want.data();
        step.n_seqs = S;
        step.seqs = seqs.data();
        if (slim_forward_step(ctx, &step, logits.data()) != SLIM_OK) {
            *why = "step " + std::to_string(k) + ": " + slim_last_error();
            ok = false;
            break;
        }
        for (size_t t = 0, w = 0; t < tk.size(); t++)
            if (want[t]) {
                (*rows)[{sq[t], pos[t]}].assign(logits.begin() + w * info.n_vocab,
                                                logits.begin() + (w + 1) * info.n_vocab);
                w++;
            }
    }
    slim_context_free(ctx);
    for (slim_lora *l : loras)
        slim_lora_free(l);
    slim_model_free(m);
    return ok;
}

int argmax(const std::vector<float> &x) {
    size_t b = 0;
    for (size_t i = 1; i < x.size(); i++)
        if (x[i] > x[b]) b = i;
    return (int)b;
}

// Device rows against CPU rows: top-1 and relative error; returns the worst.
bool close_to_cpu(const Rows &cpu, const Rows &dev, double *worst, std::string *why) {
    *worst = 0;
    for (const auto &kv : cpu) {
        auto it = dev.find(kv.first);
        if (it == dev.end()) {
            *why = "row missing";
            return false;
        }
        const std::vector<float> &c = kv.second, &d = it->second;
        double maxabs = 0, diff = 0;
        for (size_t i = 0; i < c.size(); i++) {
            maxabs = fmax(maxabs, fabs(c[i]));
            diff = fmax(diff, fabs((double)c[i] - d[i]));
        }
        const double rel = diff / (maxabs > 0 ? maxabs : 1);
        *worst = fmax(*worst, rel);
        if (argmax(c) != argmax(d) || !(rel <= BACKEND_COMPARE_TOL_FLOAT)) {
            char b[160];
            snprintf(b, sizeof b, "seq %d pos %d: top-1 %d vs %d, relative error %.3g",
                     kv.first.first, kv.first.second, argmax(c), argmax(d), rel);
            *why = b;
            return false;
        }
    }
    return true;
}

// Rows present in both must be bitwise equal; returns how many differ.
int differing(const Rows &a, const Rows &b, int *compared, std::string *first) {
    int n = 0;
    *compared = 0;
    for (const auto &kv : a) {
        auto it = b.find(kv.first);
        if (it == b.end()) continue;
        (*compared)++;
        if (kv.second.size() != it->second.size() ||
            memcmp(kv.second.data(), it->second.data(), kv.second.size() * sizeof(float))) {
            if (!n++)
                *first = "seq " + std::to_string(kv.first.first) + " pos " +
                         std::to_string(kv.first.second);
        }
    }
    return n;
}

std::vector<int32_t> make_tokens(int32_t s, int32_t n, int32_t vocab) {
    std::vector<int32_t> t;
    for (int32_t p = 0; p < n; p++)
        t.push_back((s * 53 + p * 29 + 7) % vocab);
    return t;
}

std::string g_model;

// ---------------------------------------------------------------- graphs

bool t_graphs() {
    Setup su;
    su.model = g_model;
    su.want_all = false;
    for (int32_t s = 0; s < 4; s++)
        su.tokens.push_back(make_tokens(s, 24, 250));
    const std::vector<Step> steps = {
        {{0, 0, 10}, {1, 0, 5}, {2, 0, 7}},             // prefill (eager)
        {{0, 10, 1}, {1, 5, 1}},                        // bucket 2: recorded
        {{0, 11, 1}, {1, 6, 1}, {2, 7, 1}},             // bucket 4 (one padding row): recorded
        {{0, 12, 1}, {1, 7, 1}},                        // bucket 2: replayed
        {{0, 13, 1}, {1, 8, 1}, {2, 8, 1}},             // bucket 4: replayed
        {{3, 0, 4}, {2, 9, 1}},                         // a sequence joins (eager)
        {{1, 9, 1}, {2, 10, 1}, {0, 14, 1}, {3, 4, 1}}, // bucket 4, other order
        {{0, 15, 1}},                                   // bucket 1: recorded
        {{3, 5, 1}},                                    // bucket 1: replayed
        {{0, 16, 1}, {1, 10, 1}, {2, 11, 1}, {3, 6, 1}},
    };
    Rows cpu, graphed, eager;
    std::string why;
    EXPECT(run_steps(su, SLIM_BACKEND_CPU, steps, 1, {}, &cpu, &why), "cpu: %s", why.c_str());
    const unsigned long i0 = cudasim::graphs_instantiated(), l0 = cudasim::graph_launches();
    EXPECT(run_steps(su, SLIM_BACKEND_CUDA, steps, 1, {}, &graphed, &why), "cuda: %s", why.c_str());
    const unsigned long i1 = cudasim::graphs_instantiated(), l1 = cudasim::graph_launches();
    EXPECT(run_steps(su, SLIM_BACKEND_CUDA, steps, 1, {{"SLIM_CUDA_GRAPHS", "0"}}, &eager, &why),
           "cuda eager: %s", why.c_str());
    EXPECT(cudasim::graphs_instantiated() == i1 && cudasim::graph_launches() == l1,
           "SLIM_CUDA_GRAPHS=0 still recorded or replayed");
    // 3 buckets recorded (1, 2, 4; one more if the joining sequence grew the
    // tables), every decode step a launch (a recording runs as one).
    EXPECT(i1 - i0 >= 3 && i1 - i0 <= 4, "%lu graphs recorded", i1 - i0);
    EXPECT(l1 - l0 == 8, "%lu graph launches for 8 decode steps", l1 - l0);
    int compared = 0;
    std::string first;
    const int nd = differing(graphed, eager, &compared, &first);
    EXPECT(compared == (int)cpu.size() && nd == 0,
           "%d of %d rows differ between replayed and eager steps (first: %s)", nd, compared,
           first.c_str());
    double worst = 0;
    EXPECT(close_to_cpu(cpu, graphed, &worst, &why), "vs cpu: %s", why.c_str());
    printf("     %zu rows: %lu graphs recorded, %lu replays + recordings, replay == eager bitwise; "
           "vs cpu max relative error %.2e\n",
           cpu.size(), i1 - i0, l1 - l0, worst);
    return true;
}

// ---------------------------------------------------------------- adapters

struct Golden {
    int n_vocab = 0, n_tokens = 0;
    std::vector<int32_t> tokens;
    std::vector<float> logits;
};

bool load_golden(const std::string &path, Golden *g) {
    FILE *f = fopen(path.c_str(), "rb");
    if (!f) return false;
    char magic[8];
    uint32_t hdr[2];
    bool ok = fread(magic, 1, 8, f) == 8 && memcmp(magic, "SLIMLRA1", 8) == 0 &&
              fread(hdr, 4, 2, f) == 2 && hdr[0] > 0 && hdr[0] < 100000 && hdr[1] < 1024;
    if (ok) {
        g->n_vocab = (int)hdr[0], g->n_tokens = (int)hdr[1];
        g->tokens.resize(hdr[1]);
        g->logits.resize((size_t)hdr[0] * hdr[1]);
        ok = fread(g->tokens.data(), 4, hdr[1], f) == hdr[1] &&
             fread(g->logits.data(), 4, g->logits.size(), f) == g->logits.size();
    }
    fclose(f);
    return ok;
}

// Mixed prefill and decode with four sequences over the attached adapters.
const std::vector<Step> &mixed_steps() {
    static const std::vector<Step> steps = {
        {{0, 0, 9}, {1, 0, 4}, {2, 0, 6}},
        {{0, 9, 1}, {1, 4, 5}, {3, 0, 3}},
        {{0, 10, 1}, {1, 9, 1}, {2, 6, 1}, {3, 3, 1}},
        {{0, 11, 13}, {2, 7, 1}, {3, 4, 2}},
        {{0, 24, 1}, {1, 10, 1}, {2, 8, 1}, {3, 6, 1}},
        {{0, 25, 1}, {1, 11, 1}, {3, 7, 1}},
    };
    return steps;
}

struct LoraCase {
    const char *arch;
    std::vector<std::pair<std::string, float>> loras;
    std::vector<int32_t> seq_lora;
    const char *golden; // sequence 0's golden (adapter 0 alone from position 0), or NULL
    double tol;
};
const LoraCase *g_lora;

bool t_mixed_adapters() {
    const LoraCase &c = *g_lora;
    Setup su;
    su.model = std::string("tests/data/synth_") + c.arch + ".gguf";
    su.loras = c.loras;
    su.seq_lora = c.seq_lora;
    Golden g;
    if (c.golden) EXPECT(load_golden(std::string("tests/data/") + c.golden, &g), "golden");
    for (int32_t s = 0; s < 4; s++)
        su.tokens.push_back(s == 0 && c.golden ? g.tokens : make_tokens(s, 30, 250));
    Rows cpu, dev;
    std::string why;
    EXPECT(run_steps(su, SLIM_BACKEND_CPU, mixed_steps(), 2, {}, &cpu, &why), "cpu: %s",
           why.c_str());
    EXPECT(run_steps(su, SLIM_BACKEND_CUDA, mixed_steps(), 2, {}, &dev, &why), "cuda: %s",
           why.c_str());
    double worst = 0, worst_ref = 0;
    EXPECT(close_to_cpu(cpu, dev, &worst, &why), "vs cpu: %s", why.c_str());
    int n_ref = 0;
    if (c.golden)
        for (int32_t p = 0; p < g.n_tokens; p++) {
            auto it = dev.find({0, p});
            if (it == dev.end()) continue;
            n_ref++;
            for (int i = 0; i < g.n_vocab; i++)
                worst_ref = fmax(worst_ref,
                                 fabs((double)it->second[i] - g.logits[(size_t)p * g.n_vocab + i]));
        }
    EXPECT(!c.golden || (n_ref >= 20 && worst_ref <= c.tol),
           "sequence 0 vs llama.cpp at %d positions: max |dlogit| %.4f", n_ref, worst_ref);
    printf("     %zu rows, adapters per sequence", cpu.size());
    for (int32_t l : c.seq_lora)
        printf(" %d", l);
    printf(": vs cpu max relative error %.2e", worst);
    if (c.golden)
        printf("; sequence 0 vs llama.cpp (%d positions) max |dlogit| %.4f", n_ref, worst_ref);
    printf("\n");
    return true;
}

// ---------------------------------------------------------------- invariance

struct InvCase {
    std::string model;
    const char *weight_type;
    std::vector<std::pair<std::string, float>> loras;
    std::vector<int32_t> seq_lora;
};
const InvCase *g_inv;

// Each sequence alone: the whole prompt in one step, then single decodes.
std::vector<Step> alone_steps(int32_t s, int32_t prompt, int32_t total) {
    std::vector<Step> v = {{{s, 0, prompt}}};
    for (int32_t p = prompt; p < total; p++)
        v.push_back({{s, p, 1}});
    return v;
}

bool t_invariance() {
    const InvCase &c = *g_inv;
    Setup su;
    su.model = c.model;
    su.weight_type = c.weight_type;
    su.loras = c.loras;
    su.seq_lora = c.seq_lora;
    const int32_t S = 4, prompt[S] = {11, 5, 8, 3}, total = 16;
    for (int32_t s = 0; s < S; s++)
        su.tokens.push_back(make_tokens(s, total, 250));
    // Together: prompts chunked at odd sizes next to other sequences' decodes.
    const std::vector<Step> together = {
        {{0, 0, 5}, {1, 0, 5}},
        {{0, 5, 3}, {1, 5, 1}, {2, 0, 7}},
        {{0, 8, 3}, {1, 6, 1}, {2, 7, 1}, {3, 0, 3}},
        {{0, 11, 1}, {1, 7, 1}, {2, 8, 1}, {3, 3, 1}},
        {{0, 12, 1}, {1, 8, 2}, {2, 9, 1}, {3, 4, 1}},
        {{0, 13, 1}, {1, 10, 1}, {2, 10, 6}, {3, 5, 1}},
        {{0, 14, 2}, {1, 11, 1}, {3, 6, 1}},
        {{1, 12, 1}, {3, 7, 1}},
        {{1, 13, 1}, {3, 8, 1}},
    };
    // Chunked otherwise, other block ids: two sequences at a time, chunks of 2 and 7.
    const std::vector<Step> pairs = {
        {{2, 0, 2}, {3, 0, 2}},   {{2, 2, 7}, {3, 2, 1}},  {{2, 9, 1}, {3, 3, 7}},
        {{2, 10, 1}, {3, 10, 1}}, {{0, 0, 2}, {1, 0, 7}},  {{0, 2, 7}, {1, 7, 1}},
        {{0, 9, 2}, {1, 8, 1}},   {{0, 11, 1}, {1, 9, 1}}, {{0, 12, 1}, {1, 10, 1}},
    };
    const std::vector<Env> inv = {{"SLIM_CUDA_INVARIANT", "1"}};
    Rows alone, tog, par;
    std::string why;
    for (int32_t s = 0; s < S; s++)
        EXPECT(run_steps(su, SLIM_BACKEND_CUDA, alone_steps(s, prompt[s], total), 10 + s, inv,
                         &alone, &why),
               "alone %d: %s", s, why.c_str());
    EXPECT(run_steps(su, SLIM_BACKEND_CUDA, together, 3, inv, &tog, &why), "together: %s",
           why.c_str());
    EXPECT(run_steps(su, SLIM_BACKEND_CUDA, pairs, 4, inv, &par, &why), "pairs: %s", why.c_str());
    int compared = 0, compared2 = 0;
    std::string first;
    int nd = differing(alone, tog, &compared, &first);
    EXPECT(nd == 0 && compared >= 50, "%d of %d rows differ, alone vs together (first: %s)", nd,
           compared, first.c_str());
    nd = differing(alone, par, &compared2, &first);
    EXPECT(nd == 0 && compared2 >= 40, "%d of %d rows differ, alone vs pairs (first: %s)", nd,
           compared2, first.c_str());
    // slim_context's single-sequence API (the identity block table, its own
    // block size) gives sequence 0 the same logits, bitwise.
    if (c.loras.empty()) {
        setenv("SLIM_CUDA_INVARIANT", "1", 1);
        slim_model_params mp = slim_model_default_params();
        mp.backend = SLIM_BACKEND_CUDA;
        mp.weight_type = c.weight_type;
        slim_model *m = nullptr;
        slim_context *ctx = nullptr;
        slim_context_params cp = slim_context_default_params();
        cp.n_ctx = MAX_POS;
        cp.n_batch = 32;
        cp.n_threads = 1;
        const bool ok = slim_model_load(c.model.c_str(), &mp, &m) == SLIM_OK &&
                        slim_context_create(m, &cp, &ctx) == SLIM_OK;
        unsetenv("SLIM_CUDA_INVARIANT");
        EXPECT(ok, "context: %s", slim_last_error());
        slim_model_info info{};
        info.struct_size = sizeof info;
        slim_model_get_info(m, &info);
        const size_t V = (size_t)info.n_vocab;
        std::vector<float> pl((size_t)prompt[0] * V);
        int same = 0;
        bool st = slim_prefill(ctx, su.tokens[0].data(), prompt[0], pl.data()) == SLIM_OK;
        for (int32_t p = 0; st && p < total; p++) {
            if (p >= prompt[0]) st = slim_decode(ctx, su.tokens[0][p]) == SLIM_OK;
            const float *l = p < prompt[0] ? pl.data() + p * V : slim_get_logits(ctx);
            same += st && !memcmp(l, alone[{0, p}].data(), V * sizeof(float));
        }
        slim_context_free(ctx);
        slim_model_free(m);
        EXPECT(st, "slim_context: %s", slim_last_error());
        EXPECT(same == total, "slim_context: %d of %d rows equal to the paged steps", same, total);
    }
    // The check can fail: without the mode the single-token steps take the mat-vec.
    Rows alone_default;
    for (int32_t s = 0; s < 2; s++)
        EXPECT(run_steps(su, SLIM_BACKEND_CUDA, alone_steps(s, prompt[s], total), 10 + s, {},
                         &alone_default, &why),
               "alone (default mode) %d: %s", s, why.c_str());
    int compared3 = 0;
    const int nd_default = differing(alone_default, tog, &compared3, &first);
    // (The synthetic models' rows are 2-4 quantized blocks long: there the
    // mat-vec's block order is the GEMM's, so only float weights show it.)
    EXPECT(nd_default > 0 || c.weight_type,
           "default mode: all %d rows equal, the check cannot tell", compared3);
    printf("     memcmp-equal: %d rows alone vs together, %d alone vs pairs; default mode: %d of "
           "%d rows differ\n",
           compared, compared2, nd_default, compared3);
    return true;
}

} // namespace

int main() {
    cudasim::set_deferred(true);
    cudasim::set_protect_device(true);
    const char *archs[] = {"llama3", "mistral", "qwen2", "phi3", "gemma", "gemma2", "gemma3"};
    for (const char *arch : archs) {
        g_model = std::string("tests/data/synth_") + arch + ".gguf";
        run(("graphs per bucket, replay == eager, vs cpu: " + g_model).c_str(), t_graphs);
    }
    const int32_t N = SLIM_STEP_LORA_NONE;
    static const LoraCase lora_cases[] = {
        {"llama3",
         {{"lora_llama3_a.gguf", 1.0f}, {"lora_llama3_b.gguf", -1.25f}},
         {0, 1, N, 0},
         "lora_llama3_a.bin",
         0.03},
        {"gemma3", {{"lora_gemma3.gguf", 1.0f}}, {0, N, 0, N}, "lora_gemma3.bin", 0.06},
        {"phi3", {{"lora_phi3.gguf", 0.8f}}, {N, 0, 0, N}, nullptr, 0},
    };
    for (const LoraCase &c : lora_cases) {
        g_lora = &c;
        run((std::string("mixed adapters in one step, cuda vs cpu: ") + c.arch).c_str(),
            t_mixed_adapters);
    }
    std::vector<InvCase> inv;
    for (const char *arch : archs)
        inv.push_back({std::string("tests/data/synth_") + arch + ".gguf", nullptr, {}, {}});
    for (const char *wt : {"q8_0", "q4_0", "q4_k"})
        inv.push_back({"tests/data/synth_llama3.gguf", wt, {}, {}});
    inv.push_back({"tests/data/synth_llama3.gguf",
                   nullptr,
                   {{"lora_llama3_a.gguf", 1.0f}, {"lora_llama3_b.gguf", -1.25f}},
                   {0, 1, N, 0}});
    for (const InvCase &c : inv) {
        g_inv = &c;
        std::string name = "invariant mode, logits alone == in any batch: " + c.model;
        if (c.weight_type) name += std::string(" as ") + c.weight_type;
        if (!c.loras.empty()) name += " + mixed adapters";
        run(name.c_str(), t_invariance);
    }
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
