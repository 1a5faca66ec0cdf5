/* route.c — see route.h. */
#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "macro.h"

/* /proc/net/route is a line per route; a host with this much is odd but
 * reading further would only cost memory */
#define ROUTE_TABLE_MAX (1024 * 1024)
#define RTF_UP_FLAG     0x0001

int route_default_parse(const char *text, char ret_ifname[IFNAMSIZ])
{
    unsigned long best_metric = 0;
    bool found = false;
    const char *line = text;

    /* the first line is the header */
    line = strchr(line, '\n');
    while (line && *++line) {
        char ifname[IFNAMSIZ + 1];
        unsigned long dest, gw, flags, refcnt, use, metric, mask;
        if (sscanf(line, "%16s %lx %lx %lx %lu %lu %lu %lx", ifname, &dest, &gw, &flags, &refcnt,
                   &use, &metric, &mask) == 8 &&
            strlen(ifname) < IFNAMSIZ && dest == 0 && mask == 0 && (flags & RTF_UP_FLAG) &&
            (!found || metric < best_metric)) {
            memcpy(ret_ifname, ifname, strlen(ifname) + 1);
            best_metric = metric;
            found = true;
        }
        line = strchr(line, '\n');
    }
    return found ? 0 : -ENOENT;
}

int route_default_ifname(char ret_ifname[IFNAMSIZ])
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = read_file("/proc/net/route", ROUTE_TABLE_MAX, &text, &len);

    if (r < 0)
        return r;
    return route_default_parse(text, ret_ifname);
}

int route_ip_forward(bool *ret_on)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = read_file("/proc/sys/net/ipv4/ip_forward", 64, &text, &len);

    if (r < 0)
        return r;
    *ret_on = text[0] == '1';
    return 0;
}
