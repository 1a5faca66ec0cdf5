/* transfer_progress.c — the progress line of `noid cp` and the signals
 * that interrupt a transfer (transfer.h).
 *
 * The line is one terminal line on stderr, redrawn in place ("\r", erase
 * to the end) at most every TRANSFER_PROGRESS_EVERY_MS: the name, bytes
 * moved, the total and percentage when known, and the average rate.  It
 * appears only for transfers of TRANSFER_PROGRESS_MIN bytes or more (known
 * up front, or once that much has moved), so small copies stay silent. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "timeutil.h"
#include "transfer.h"

volatile sig_atomic_t transfer_interrupted;

static void on_signal(int sig)
{
    transfer_interrupted = sig;
}

void transfer_catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};

    /* no SA_RESTART: a read of stdin or a write to a slow pipe returns
     * EINTR, so the transfer sees the flag at once */
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
}

/* n bytes as "12.3 MiB" */
static void human(int64_t n, char *out, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    size_t u = 0;

    if (n < 1024) {
        snprintf(out, size, "%" PRId64 " B", n);
        return;
    }
    v /= 1024;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    snprintf(out, size, "%.1f %s", v, units[u]);
}

void progress_start(struct progress *p, bool enabled, const char *label, int64_t total)
{
    size_t n = strlen(label);

    *p = (struct progress){.enabled = enabled, .total = total, .start_ms = time_mono_ms()};
    if (n >= sizeof(p->label)) {
        /* cut on a UTF-8 character boundary, and say it was cut */
        n = sizeof(p->label) - 4;
        while (n > 0 && ((unsigned char)label[n] & 0xc0) == 0x80)
            n--;
        memcpy(p->label, label, n);
        memcpy(p->label + n, "...", 4);
    } else {
        memcpy(p->label, label, n + 1);
    }
}

static void draw(struct progress *p, int64_t now)
{
    char done[32], total[32], rate[32], pct[16] = "";
    int64_t elapsed = now - p->start_ms;

    human(p->done, done, sizeof(done));
    if (p->total >= 0) {
        human(p->total, total, sizeof(total));
        snprintf(pct, sizeof(pct), "  %3d%%", p->total ? (int)(p->done * 100 / p->total) : 100);
    }
    human(elapsed > 0 ? p->done * 1000 / elapsed : 0, rate, sizeof(rate));
    fprintf(stderr, "\r%s  %s%s%s%s  %s/s\033[K", p->label, done, p->total >= 0 ? " / " : "",
            p->total >= 0 ? total : "", pct, rate);
    fflush(stderr);
    p->shown = true;
    p->drawn_ms = now;
}

void progress_update(struct progress *p, int64_t done, int64_t total)
{
    int64_t now;

    if (!p->enabled)
        return;
    p->done = done;
    if (total >= 0)
        p->total = total;
    if ((p->total >= 0 ? p->total : p->done) < TRANSFER_PROGRESS_MIN)
        return;
    now = time_mono_ms();
    if (p->shown && now - p->drawn_ms < TRANSFER_PROGRESS_EVERY_MS)
        return;
    draw(p, now);
}

void progress_end(struct progress *p, bool ok)
{
    if (!p->shown)
        return;
    if (ok)
        draw(p, time_mono_ms());
    fputc('\n', stderr);
    p->shown = false;
}
