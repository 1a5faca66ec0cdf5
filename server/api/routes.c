/* routes.c — the route table of the REST API (the guide's endpoint tables)
 * and the matcher.  A pattern segment "{x}" captures one path segment; a
 * pattern ending in "{+x}" right after a literal captures the rest of the
 * path, which must be empty or start with '/' ("" is captured as "/"):
 * "/v1/vms/{name}/files{+path}" takes /v1/vms/box/files, .../files/ and
 * .../files/etc/hosts, not .../filesystem. */
#include <string.h>

#include "api.h"

static const struct api_route routes[] = {
    {"GET", "/healthz", api_get_healthz, .blocking = false},
    {"GET", "/version", api_get_version, .blocking = false},
    {"GET", "/v1/whoami", api_get_whoami, .blocking = false},
    {"GET", "/v1/capabilities", api_get_capabilities, .blocking = false},
    {"POST", "/v1/vms", api_post_vms, .blocking = true},
    {"GET", "/v1/vms", api_get_vms, .blocking = false},
    {"GET", "/v1/vms/{name}", api_get_vm, .blocking = false},
    {"DELETE", "/v1/vms/{name}", api_delete_vm, .blocking = true},
    {"POST", "/v1/vms/{name}/exec", api_post_exec, .blocking = true},
    /* WebSocket upgrades: quick checks here, the session on its own thread */
    {"GET", "/v1/vms/{name}/exec", api_get_exec_ws, .blocking = false},
    {"GET", "/v1/vms/{name}/console", api_get_console_ws, .blocking = false},
    /* reads up to max_console_log_bytes from disk: off the epoll threads */
    {"GET", "/v1/vms/{name}/console.log", api_get_console_log, .blocking = true},
    {"POST", "/v1/vms/{name}/checkpoints", api_post_checkpoint, .blocking = true},
    {"GET", "/v1/vms/{name}/checkpoints", api_get_checkpoints, .blocking = false},
    {"DELETE", "/v1/vms/{name}/checkpoints/{id}", api_delete_checkpoint, .blocking = true},
    {"POST", "/v1/vms/{name}/restore", api_post_restore, .blocking = true},
    /* guest files (handlers_files.c): every one waits for the guest; PUT
     * gets its body as it arrives, on its worker thread */
    {"GET", "/v1/vms/{name}/files{+path}", api_get_file, .blocking = true},
    {"HEAD", "/v1/vms/{name}/files{+path}", api_get_file, .blocking = true},
    {"PUT", "/v1/vms/{name}/files{+path}", api_put_file, .blocking = true, .streaming_body = true},
    {"DELETE", "/v1/vms/{name}/files{+path}", api_delete_file, .blocking = true},
    {"POST", "/v1/vms/{name}/files{+path}", api_post_file, .blocking = true},
};

/* Match path against pattern; on success params[] hold malloc'd captures. */
static bool match(const char *pattern, const char *path, char *params[API_MAX_PARAMS])
{
    size_t np = 0;

    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/')
            return false;
        pattern++;
        path++;
        size_t plen = strcspn(pattern, "/"), slen = strcspn(path, "/");
        const char *rest = strstr(pattern, "{+");
        if (rest && (size_t)(rest - pattern) < plen) {
            /* a literal prefix of this segment, then the rest of the path */
            size_t lit = (size_t)(rest - pattern);
            if (strncmp(pattern, path, lit) != 0 || (path[lit] && path[lit] != '/') ||
                np >= API_MAX_PARAMS)
                return false;
            if (params)
                params[np] = strdup(path[lit] ? path + lit : "/");
            return true;
        }
        if (pattern[0] == '{') {
            if (slen == 0 || np >= API_MAX_PARAMS)
                return false;
            if (params)
                params[np] = strndup(path, slen);
            np++;
        } else if (plen != slen || strncmp(pattern, path, plen) != 0) {
            return false;
        }
        pattern += plen;
        path += slen;
    }
    return *pattern == '\0' && *path == '\0';
}

const struct api_route *api_route_find(const char *method, const char *path,
                                       char *params[API_MAX_PARAMS], bool *ret_path_known,
                                       char *allow, size_t allow_size)
{
    *ret_path_known = false;
    allow[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        if (!match(routes[i].pattern, path, NULL))
            continue;
        if (strcmp(routes[i].method, method) == 0) {
            match(routes[i].pattern, path, params);
            return &routes[i];
        }
        *ret_path_known = true;
        size_t n = strlen(allow);
        snprintf(allow + n, allow_size - n, "%s%s", n ? ", " : "", routes[i].method);
    }
    return NULL;
}
