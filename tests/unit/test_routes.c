/* test_routes.c — the REST route matcher (server/api/routes.c): "{x}"
 * captures one segment, a final "{+x}" the rest of the path (the guest
 * path of /v1/vms/{name}/files...). */
#include <string.h>

#include "api.h"
#include "unit.h"

/* Route method + path; the captures in p[] (freed by free_params). */
static const struct api_route *find(const char *method, const char *path, char *p[API_MAX_PARAMS],
                                    bool *known, char allow[64])
{
    memset(p, 0, sizeof(char *) * API_MAX_PARAMS);
    return api_route_find(method, path, p, known, allow, 64);
}

static void free_params(char *p[API_MAX_PARAMS])
{
    for (size_t i = 0; i < API_MAX_PARAMS; i++)
        free(p[i]);
}

START_TEST(segments)
{
    char *p[API_MAX_PARAMS], allow[64];
    bool known;
    const struct api_route *r;

    r = find("GET", "/v1/vms/box", p, &known, allow);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(p[0], "box");
    free_params(p);
    r = find("DELETE", "/v1/vms/box/checkpoints/45c2", p, &known, allow);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(p[0], "box");
    ck_assert_str_eq(p[1], "45c2");
    free_params(p);
    ck_assert_ptr_null(find("GET", "/v1/vms//exec", p, &known, allow));
    ck_assert_ptr_null(find("GET", "/v1/vms/box/", p, &known, allow));
    ck_assert_ptr_null(find("PUT", "/v1/vms/box", p, &known, allow));
    ck_assert(known);
    ck_assert_ptr_nonnull(strstr(allow, "GET"));
    ck_assert_ptr_nonnull(strstr(allow, "DELETE"));
}
END_TEST

START_TEST(rest_of_path)
{
    static const struct {
        const char *url, *path;
    } cases[] = {
        {"/v1/vms/box/files", "/"},
        {"/v1/vms/box/files/", "/"},
        {"/v1/vms/box/files/etc/hosts", "/etc/hosts"},
        {"/v1/vms/box/files/tmp/a/../b", "/tmp/a/../b"},
        {"/v1/vms/box/files//x//", "//x//"},
        {"/v1/vms/box/files/with space/é", "/with space/é"},
    };
    static const char *const methods[] = {"GET", "HEAD", "PUT", "DELETE", "POST"};
    char *p[API_MAX_PARAMS], allow[64];
    bool known;

    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            const struct api_route *r = find(methods[m], cases[i].url, p, &known, allow);
            ck_assert_msg(r != NULL, "%s %s not routed", methods[m], cases[i].url);
            ck_assert_str_eq(p[0], "box");
            ck_assert_str_eq(p[1], cases[i].path);
            ck_assert_ptr_null(p[2]);
            ck_assert_int_eq(r->streaming_body, strcmp(methods[m], "PUT") == 0);
            ck_assert(r->blocking);
            free_params(p);
        }
    ck_assert_ptr_null(find("GET", "/v1/vms/box/filesystem", p, &known, allow));
    ck_assert(!known);
    ck_assert_ptr_null(find("GET", "/v1/vms/box/file", p, &known, allow));
    ck_assert_ptr_null(find("GET", "/v1/vms//files/x", p, &known, allow));
    ck_assert_ptr_null(find("PATCH", "/v1/vms/box/files/x", p, &known, allow));
    ck_assert(known);
    ck_assert_str_eq(allow, "GET, HEAD, PUT, DELETE, POST");
}
END_TEST

Suite *suite_routes(void)
{
    Suite *s = suite_create("routes");
    TCase *tc = tcase_create("match");

    tcase_add_test(tc, segments);
    tcase_add_test(tc, rest_of_path);
    suite_add_tcase(s, tc);
    return s;
}
