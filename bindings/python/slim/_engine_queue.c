/* The event queue between a slim_engine and Python (compiled into the cffi
 * extension after slim.h; declared for cffi in _ffi_build.py).
 *
 * slim_engine runs request callbacks on its own thread.  Running Python there
 * would take the GIL on every token and stall the forward pass behind Python
 * code, so the callback stays in C: it deep-copies the event into a node and
 * appends it to a queue; one Python dispatcher thread takes every queued node
 * at once with slimpy_queue_wait (a cffi call: the GIL is released while it
 * blocks) and hands them to the requests.
 *
 * A request's final node is allocated before submit and is its callback's
 * `user`, so the DONE event always reaches Python, even when memory runs out
 * later: then the node says SLIM_ERR_NOMEM instead of the copied result. */

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slimpy_queue slimpy_queue;

typedef struct slimpy_node {
    struct slimpy_node *next;
    uint64_t key;        /* Python's name for the request */
    slimpy_queue *queue; /* where the request's events go */
    int32_t lost;        /* token events of this request dropped for want of memory */
    slim_event ev;       /* a deep copy: every pointer owned by the node */
} slimpy_node;

struct slimpy_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slimpy_node *head, **tail;
    int woken;
};

static slimpy_queue *slimpy_queue_new(void) {
    slimpy_queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    if (pthread_mutex_init(&q->mu, NULL)) {
        free(q);
        return NULL;
    }
    if (pthread_cond_init(&q->cv, NULL)) {
        pthread_mutex_destroy(&q->mu);
        free(q);
        return NULL;
    }
    q->tail = &q->head;
    return q;
}

static void slimpy_node_free(slimpy_node *n) {
    if (!n) return;
    /* Token nodes keep their copies in the same allocation. */
    if (n->ev.type == SLIM_EVENT_DONE) {
        free((void *)n->ev.error);
        free((void *)n->ev.tokens);
        free((void *)n->ev.text);
        free((void *)n->ev.prompt_logprobs);
        free((void *)n->ev.prompt_top);
    }
    free(n);
}

/* Free the nodes of a list (what slimpy_queue_wait returned, or a queue's). */
static void slimpy_list_free(slimpy_node *n) {
    while (n) {
        slimpy_node *next = n->next;
        slimpy_node_free(n);
        n = next;
    }
}

static void slimpy_queue_free(slimpy_queue *q) {
    if (!q) return;
    slimpy_list_free(q->head);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/* A request's final node, allocated before submit (its callback's user). */
static slimpy_node *slimpy_request_new(slimpy_queue *q, uint64_t key) {
    slimpy_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->key = key;
    n->queue = q;
    return n;
}

static void push(slimpy_queue *q, slimpy_node *n) {
    n->next = NULL;
    pthread_mutex_lock(&q->mu);
    *q->tail = n;
    q->tail = &n->next;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static void *dup_bytes(const void *p, size_t n, int *failed) {
    if (!p) return NULL;
    void *d = malloc(n ? n : 1);
    if (!d) {
        *failed = 1;
        return NULL;
    }
    memcpy(d, p, n);
    return d;
}

/* The slim_event_fn of every request (user: its final node). */
static int slimpy_on_event(const slim_event *ev, void *user) {
    slimpy_node *req = user;
    if (ev->type == SLIM_EVENT_TOKEN) {
        const size_t n_top = ev->top && ev->n_top > 0 ? (size_t)ev->n_top : 0;
        /* One allocation: the node, then the top log-probabilities, then the piece. */
        const size_t top_at = sizeof(slimpy_node);
        const size_t piece_at = top_at + n_top * sizeof(slim_logprob);
        slimpy_node *n = malloc(piece_at + ev->piece_len + 1);
        if (!n) {
            req->lost++;
            return 1; /* cancel: the request finishes with what it has */
        }
        n->key = req->key;
        n->queue = req->queue;
        n->lost = 0;
        n->ev = *ev;
        slim_logprob *top = (slim_logprob *)((char *)n + top_at);
        char *piece = (char *)n + piece_at;
        if (n_top) memcpy(top, ev->top, n_top * sizeof *top);
        if (ev->piece_len) memcpy(piece, ev->piece, ev->piece_len);
        piece[ev->piece_len] = '\0';
        n->ev.top = n_top ? top : NULL;
        n->ev.n_top = (int32_t)n_top;
        n->ev.piece = piece;
        push(req->queue, n);
        return 0;
    }
    if (ev->type != SLIM_EVENT_DONE) return 0;
    req->ev = *ev;
    int failed = 0;
    const size_t n_prompt = ev->n_prompt > 0 ? (size_t)ev->n_prompt : 0;
    const size_t n_tok = ev->n_tokens > 0 ? (size_t)ev->n_tokens : 0;
    const char *err = ev->error ? ev->error : "";
    req->ev.error = dup_bytes(err, strlen(err) + 1, &failed);
    req->ev.tokens = dup_bytes(ev->tokens, n_tok * sizeof *ev->tokens, &failed);
    req->ev.text = ev->text ? dup_bytes(ev->text, ev->text_len + 1, &failed) : NULL;
    req->ev.prompt_logprobs =
        dup_bytes(ev->prompt_logprobs, n_prompt * sizeof *ev->prompt_logprobs, &failed);
    req->ev.prompt_top = dup_bytes(
        ev->prompt_top,
        n_prompt * (size_t)(ev->n_prompt_top > 0 ? ev->n_prompt_top : 0) * sizeof *ev->prompt_top,
        &failed);
    if (failed) req->ev.status = SLIM_ERR_NOMEM; /* Python reports it; the copies that worked go */
    push(req->queue, req);
    return 0;
}

/* Every queued node, oldest first (NULL when none came within timeout_ms;
 * negative: wait until one comes or slimpy_queue_wake).  The caller frees
 * the list with slimpy_list_free. */
static slimpy_node *slimpy_queue_wait(slimpy_queue *q, int32_t timeout_ms) {
    pthread_mutex_lock(&q->mu);
    if (!q->head && !q->woken && timeout_ms != 0) {
        if (timeout_ms < 0) {
            while (!q->head && !q->woken)
                pthread_cond_wait(&q->cv, &q->mu);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += timeout_ms / 1000;
            ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            while (!q->head && !q->woken)
                if (pthread_cond_timedwait(&q->cv, &q->mu, &ts)) break;
        }
    }
    slimpy_node *n = q->head;
    q->head = NULL;
    q->tail = &q->head;
    q->woken = 0;
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* Make a waiting (or the next) slimpy_queue_wait return now. */
static void slimpy_queue_wake(slimpy_queue *q) {
    pthread_mutex_lock(&q->mu);
    q->woken = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}
