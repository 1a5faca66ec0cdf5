/* fuzz_agent_net_cmdline.c — libFuzzer target: the agent's parser of the
 * kernel command line's ip= (agent/net_cmdline.c).  The input is a command
 * line as /proc/cmdline gives it.  What the parser accepts must be settings
 * SET_NETWORK would accept too (given a MAC): the cold boot and the restore
 * configure the NIC with the same code and the same rules. */
#include <stdint.h>
#include <string.h>

#include "../../agent/net_cmdline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t mac[6] = {0xaa, 0xfc, 0, 0, 0, 1};
    struct net_cmdline c;
    struct ap_net back;
    uint8_t wire[AP_NET_LEN];
    const char *why = NULL;
    int r;

    memset(&c, 0x5a, sizeof(c));
    r = net_cmdline_parse((const char *)data, size, &c, &why);
    if (r < 0 && (!why || !why[0]))
        __builtin_trap(); /* a refusal always says why */
    if (r != 1)
        return 0;
    if (!c.net.up || strnlen(c.dev, sizeof(c.dev)) > NET_CMDLINE_DEV_MAX || strchr(c.dev, '/'))
        __builtin_trap();
    memcpy(c.net.mac, mac, 6);
    ap_net_encode(&c.net, wire);
    if (ap_net_decode(wire, sizeof(wire), &back) != 0 || back.prefix != c.net.prefix)
        __builtin_trap();
    return 0;
}
