/* golden_provision.c — `noid-server golden provision`: the engine's
 * provisioning (engine/golden_provision.c) for a terminal.  Each command's
 * output is shown as it comes, after a line "==> COMMAND"; the first
 * command that fails stops everything and is named; SIGINT and SIGTERM
 * stop it cleanly (the temporary VM is removed, the snapshot unchanged
 * unless the swap was already done) with the shell's 130 / 143.
 *
 * Output goes from the agent's reader thread (which must not block) into a
 * queue that this thread writes out between short waits for the command's
 * end; what it wrote is acknowledged to the engine, so a terminal or pipe
 * that reads slowly slows the command (the guest holds its output back),
 * never the agent. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "engine.h"
#include "log.h"

#define WAIT_SLICE_MS 50
/* an agent without output credit (older guests) sends unasked: what the
 * terminal cannot take beyond this is dropped and counted */
#define QUEUE_MAX_BYTES (16u * 1024 * 1024)

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    static const char msg_int[] = "golden provision: stopping after the current step (Ctrl-C "
                                  "again to quit at once, leaving a VM behind)\n";
    static const char msg_term[] = "golden provision: stopping after the current step (a "
                                   "second signal quits at once, leaving a VM behind)\n";
    int saved_errno = errno;
    const char *msg = sig == SIGINT ? msg_int : msg_term;
    size_t len = sig == SIGINT ? sizeof(msg_int) - 1 : sizeof(msg_term) - 1;

    if (stop_signal) /* the second one: leave at once; the server's start or the next run sweeps */
        _exit(128 + sig);
    stop_signal = sig;
    /* a build or a boot can take a minute before the stop shows: say it
     * now (write is async-signal-safe, stdio is not) */
    if (write(STDERR_FILENO, msg, len) < 0) {
        /* nothing to do: the stop goes on without the notice */
    }
    errno = saved_errno;
}

static void catch_stop_signals(void)
{
    struct sigaction sa = {.sa_handler = on_stop_signal}; /* no SA_RESTART: waits wake */

    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout must not kill us before the cleanup */
}

struct chunk {
    struct chunk *next;
    bool is_stderr;
    size_t len;
    uint8_t data[];
};

struct out_queue {
    pthread_mutex_t lock;
    struct chunk *head, **tail; /* (lock) */
    size_t bytes;               /* (lock) queued */
    size_t dropped;             /* (lock) bytes over QUEUE_MAX_BYTES */
    int last_byte;              /* last byte written out on either stream, -1 none */
    bool last_on_stderr;
};

/* Agent reader thread: queue, never block on the terminal. */
static void on_output(void *user, bool is_stderr, const uint8_t *data, size_t len)
{
    struct out_queue *q = user;
    struct chunk *c = NULL;

    pthread_mutex_lock(&q->lock);
    if (q->bytes + len <= QUEUE_MAX_BYTES)
        c = malloc(sizeof(*c) + len);
    if (c) {
        c->next = NULL;
        c->is_stderr = is_stderr;
        c->len = len;
        memcpy(c->data, data, len);
        *q->tail = c;
        q->tail = &c->next;
        q->bytes += len;
    } else {
        q->dropped += len;
    }
    pthread_mutex_unlock(&q->lock);
}

/* Empty the queue: its chunks (oldest first) and how many bytes it dropped. */
static struct chunk *queue_take_all(struct out_queue *q, size_t *ret_dropped)
{
    struct chunk *list;

    pthread_mutex_lock(&q->lock);
    list = q->head;
    *ret_dropped = q->dropped;
    q->head = NULL;
    q->tail = &q->head;
    q->bytes = 0;
    q->dropped = 0;
    pthread_mutex_unlock(&q->lock);
    return list;
}

/* Write out what is queued and give the guest its output credit back. */
static void drain(struct out_queue *q, struct engine_exec_stream *s)
{
    size_t dropped;
    struct chunk *list = queue_take_all(q, &dropped);

    while (list) {
        struct chunk *c = list;
        FILE *f = c->is_stderr ? stderr : stdout;
        list = c->next;
        fwrite(c->data, 1, c->len, f);
        fflush(f);
        if (c->len) {
            q->last_byte = c->data[c->len - 1];
            q->last_on_stderr = c->is_stderr;
        }
        engine_exec_stream_output_done(s, c->len);
        free(c);
    }
    if (dropped) {
        fprintf(stderr, "\n[golden provision: %zu bytes of output dropped]\n", dropped);
        q->last_byte = '\n';
    }
}

/* Free what is queued without writing it or crediting it: output of a
 * command whose stream is gone (it came after the last drain), which must
 * not be credited to the next command's stream. */
static void discard(struct out_queue *q)
{
    size_t dropped;
    struct chunk *list = queue_take_all(q, &dropped);

    while (list) {
        struct chunk *c = list;
        list = c->next;
        free(c);
    }
}

/* End a line the command's output left open, so what we print next
 * starts a line of its own. */
static void end_line(struct out_queue *q)
{
    if (q->last_byte >= 0 && q->last_byte != '\n') {
        fputc('\n', q->last_on_stderr ? stderr : stdout);
        fflush(q->last_on_stderr ? stderr : stdout);
    }
    q->last_byte = '\n';
}

static void print_header(struct out_queue *q, const char *command)
{
    end_line(q);
    printf("==> %s\n", command);
    fflush(stdout);
}

/* Run one command to its end (or the stop signal).  1: it exited 0;
 * 0: it failed (said why); < 0: the engine failed (e). */
static int run_command(struct engine_provision *p, struct out_queue *q, const char *command,
                       int index, int count, long long timeout_secs, struct nerr *e)
{
    struct engine_exec_events ev = {on_output, q};
    struct engine_exec_stream *s = NULL;
    struct wire_exec_result res = {0};
    int r;

    print_header(q, command);
    r = engine_provision_exec_start(p, command, timeout_secs, &ev, &s, e);
    if (r < 0)
        return r;
    for (;;) {
        r = engine_exec_stream_wait(s, WAIT_SLICE_MS, &res, e);
        drain(q, s);
        if (r != 0 || stop_signal)
            break;
    }
    if (r == 0) /* stopped by a signal: the command goes with the VM */
        engine_exec_stream_kill(s);
    drain(q, s);
    engine_exec_stream_free(s);
    discard(q); /* the reader may have queued more between the drain and the free */
    if (r <= 0)
        return r;
    if (res.exit_code == 0)
        return 1;
    end_line(q);
    if (res.timed_out)
        fprintf(stderr,
                "noid-server golden provision: command %d of %d timed out after %lld s: %s\n",
                index, count, timeout_secs, command);
    else if (res.signal)
        fprintf(stderr,
                "noid-server golden provision: command %d of %d was killed by signal %d: %s\n",
                index, count, (int)res.signal, command);
    else
        fprintf(stderr,
                "noid-server golden provision: command %d of %d failed with exit status %d: %s\n",
                index, count, (int)res.exit_code, command);
    return 0;
}

static int stopped_status(void)
{
    return 128 + stop_signal;
}

static const char *signal_name(void)
{
    return stop_signal == SIGINT ? "SIGINT" : "SIGTERM";
}

int cmd_golden_provision(struct server_config *cfg, char **commands, int count,
                         long long timeout_secs)
{
    struct out_queue q = {.lock = PTHREAD_MUTEX_INITIALIZER, .last_byte = -1};
    struct engine *eng = NULL;
    struct engine_provision *p = NULL;
    struct nerr e = {0};
    const char *unchanged = "the golden snapshot is unchanged";
    int status = 1, r, ran = 1;

    q.tail = &q.head;
    catch_stop_signals();
    r = engine_open(cfg, ENGINE_GOLDEN, &eng, &e);
    if (r >= 0)
        r = engine_provision_begin(eng, &stop_signal, &p, &e);
    /* ran: 1 every command exited 0, 0 one failed (run_command said so) */
    for (int i = 0; i < count && r >= 0 && ran > 0 && !stop_signal; i++) {
        r = run_command(p, &q, commands[i], i + 1, count, timeout_secs, &e);
        ran = r;
    }
    if (r >= 0 && ran > 0 && !stop_signal)
        r = engine_provision_checkpoint(p, &e);
    if (stop_signal) { /* nothing is swapped yet: the promote comes next */
        end_line(&q);
        fprintf(stderr, "noid-server golden provision: interrupted (%s); %s\n", signal_name(),
                unchanged);
        status = stopped_status();
        goto out;
    }
    if (r < 0) {
        fprintf(stderr, "noid-server golden provision: %s%s%s\n", nerr_msg(&e), p ? "; " : "",
                p ? unchanged : "");
        goto out;
    }
    if (ran == 0) {
        fprintf(stderr, "noid-server golden provision: %s\n", unchanged);
        goto out;
    }
    r = engine_provision_promote(p, &e);
    if (r < 0) {
        fprintf(stderr, "noid-server golden provision: %s; %s\n", nerr_msg(&e), unchanged);
        goto out;
    }
    printf("golden snapshot ready\n");
    fflush(stdout);
    status = 0;
    if (stop_signal) { /* it came during the promote, which swapped all the same */
        fprintf(stderr,
                "noid-server golden provision: interrupted (%s) after the new golden "
                "snapshot was in place\n",
                signal_name());
        status = stopped_status();
    }
out:
    engine_provision_end(p);
    engine_close(eng);
    discard(&q);
    return status;
}
