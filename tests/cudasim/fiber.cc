// fiber.cc: context switch and stacks for the CUDA emulator (see fiber.h).
#include "fiber.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define CUDASIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDASIM_ASAN 1
#endif
#endif

#if defined(CUDASIM_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace cudasim {

namespace {
#if defined(CUDASIM_UCONTEXT)
thread_local ucontext_t t_sched_uc;
#else
thread_local void *t_sched_sp; // scheduler's saved stack pointer
#endif
#if defined(CUDASIM_ASAN)
thread_local const void *t_sched_bottom;
thread_local size_t t_sched_size;
thread_local void *t_sched_fake;
#endif
} // namespace

} // namespace cudasim

#if !defined(CUDASIM_UCONTEXT)
// void cudasim_ctx_switch(void **save_sp, void *new_sp)
// Saves rbp rbx r12-r15 + mxcsr + x87 control word on the current stack,
// stores rsp to *save_sp, loads new_sp and restores the same from there.
extern "C" void cudasim_ctx_switch(void **save_sp, void *new_sp);
extern "C" void cudasim_ctx_trampoline(void);
asm(R"(
    .text
    .globl cudasim_ctx_switch
    .type cudasim_ctx_switch,@function
    .p2align 4
cudasim_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cudasim_ctx_switch, .-cudasim_ctx_switch

    .globl cudasim_ctx_trampoline
    .type cudasim_ctx_trampoline,@function
    .p2align 4
cudasim_ctx_trampoline:
    movq %r13, %rdi
    callq *%r12
    ud2
    .size cudasim_ctx_trampoline, .-cudasim_ctx_trampoline
)");
#endif

namespace cudasim {

static void fiber_entry(void *p) {
    Fiber *f = static_cast<Fiber *>(p);
#if defined(CUDASIM_ASAN)
    __sanitizer_finish_switch_fiber(nullptr, &t_sched_bottom, &t_sched_size);
#endif
    f->fn(f->arg);
    // fn must end with fiber_yield(f, true); returning is a bug.
    abort();
}

#if defined(CUDASIM_UCONTEXT)
static void uc_entry(unsigned lo, unsigned hi) {
    uintptr_t v = ((uintptr_t)hi << 32) | (uintptr_t)lo;
    fiber_entry(reinterpret_cast<void *>(v));
}
#endif

bool fiber_alloc(Fiber *f, size_t stack_size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    stack_size = (stack_size + page - 1) / page * page;
    if (f->map && f->stack_size == stack_size) return true;
    fiber_free(f);
    size_t total = stack_size + page;
    void *m = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return false;
    if (mprotect(m, page, PROT_NONE) != 0) { // guard page below the stack
        munmap(m, total);
        return false;
    }
    f->map = static_cast<unsigned char *>(m);
    f->map_size = total;
    f->stack = f->map + page;
    f->stack_size = stack_size;
    return true;
}

void fiber_free(Fiber *f) {
    if (f->map) munmap(f->map, f->map_size);
    f->map = nullptr;
    f->stack = nullptr;
    f->map_size = f->stack_size = 0;
}

void fiber_prepare(Fiber *f, fiber_fn fn, void *arg) {
    f->fn = fn;
    f->arg = arg;
    f->asan_fake = nullptr;
#if defined(CUDASIM_ASAN)
    // A fiber abandoned mid-kernel (after a reported error) may leave stack
    // redzones poisoned; the stack is reused from scratch.
    ASAN_UNPOISON_MEMORY_REGION(f->stack, f->stack_size);
#endif
#if defined(CUDASIM_UCONTEXT)
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = f->stack;
    f->uc.uc_stack.ss_size = f->stack_size;
    f->uc.uc_link = nullptr;
    uintptr_t v = reinterpret_cast<uintptr_t>(f);
    makecontext(&f->uc, (void (*)())uc_entry, 2, (unsigned)(v & 0xffffffffu), (unsigned)(v >> 32));
#else
    uintptr_t top = reinterpret_cast<uintptr_t>(f->stack + f->stack_size);
    top &= ~(uintptr_t)15;
    uint64_t *sp = reinterpret_cast<uint64_t *>(top - 16 - 64); // 16-aligned
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    uint64_t ctl = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
    sp[0] = ctl;                                                 // mxcsr, x87 cw
    sp[1] = 0;                                                   // r15
    sp[2] = 0;                                                   // r14
    sp[3] = reinterpret_cast<uint64_t>(f);                       // r13 -> rdi
    sp[4] = reinterpret_cast<uint64_t>(&fiber_entry);            // r12 -> call target
    sp[5] = 0;                                                   // rbx
    sp[6] = 0;                                                   // rbp
    sp[7] = reinterpret_cast<uint64_t>(&cudasim_ctx_trampoline); // ret
    f->sp = sp;
#endif
}

void fiber_resume(Fiber *f) {
#if defined(CUDASIM_ASAN)
    __sanitizer_start_switch_fiber(&t_sched_fake, f->stack, f->stack_size);
#endif
#if defined(CUDASIM_UCONTEXT)
    swapcontext(&t_sched_uc, &f->uc);
#else
    cudasim_ctx_switch(&t_sched_sp, f->sp);
#endif
#if defined(CUDASIM_ASAN)
    __sanitizer_finish_switch_fiber(t_sched_fake, nullptr, nullptr);
#endif
}

void fiber_yield(Fiber *self, bool last) {
#if defined(CUDASIM_ASAN)
    __sanitizer_start_switch_fiber(last ? nullptr : &self->asan_fake, t_sched_bottom, t_sched_size);
#else
    (void)last;
#endif
#if defined(CUDASIM_UCONTEXT)
    swapcontext(&self->uc, &t_sched_uc);
#else
    cudasim_ctx_switch(&self->sp, t_sched_sp);
#endif
#if defined(CUDASIM_ASAN)
    __sanitizer_finish_switch_fiber(self->asan_fake, &t_sched_bottom, &t_sched_size);
#endif
}

} // namespace cudasim
