/*
 * Event stream generator. A seeded simulation of an AuthKit environment
 * (organizations, users, memberships, invitations, sessions, API keys, and
 * log-only authentication events) writes one event per line in the envelope
 * WorkOS uses, with the payload quirks a consumer must tolerate: secrets on
 * the wire, optional fields missing or null, delete cascades repeating the
 * previous updated_at, stale snapshots arriving late (also after a delete),
 * re-sent duplicates, \u-escaped strings and unknown event types.
 *
 * While it writes, it keeps for every object the snapshot that must win
 * (greatest data.updated_at, ties to the later event, nothing after a
 * delete counts) and finally writes that expected mirror state.
 */
#include "emu_gen.h"

#include "emu_state.h"
#include "emu_util.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COUNT 50000000u
#define NO_REF UINT32_MAX /* an optional reference that is null */

/* What every simulated object has in common. */
typedef struct {
    char id[48];
    bool deleted;
    int64_t created_ms, updated_ms;
    char *snap; /* last payload sent */
    const char *snap_event;
    int64_t snap_ms; /* its updated_at */
    char *prev;      /* an older payload, for stale re-sends */
    const char *prev_event;
    int64_t prev_ms;
} base_t;

typedef struct {
    base_t b;
    char *name;
    char *external_id;
    char domain[48];
    char domain_id[48];
    char stripe[32];
    int meta;
} org_t;

typedef struct {
    base_t b;
    char *email;
    const char *first, *last, *locale, *picture;
    char *external_id;
    bool verified, omit_locale;
    int meta;
    int64_t last_sign_in_ms;
    uint32_t *oms; /* membership indexes */
    size_t noms, capoms;
} user_t;

typedef struct {
    base_t b;
    uint32_t user, org;
    const char *role, *status;
    int roles, attrs;
    bool directory;
} om_t;

typedef struct {
    base_t b;
    char *email;
    const char *state, *role_slug;
    uint32_t org, inviter, accepted_user;
    char token[40];
    int64_t expires_ms, accepted_ms, revoked_ms;
} inv_t;

typedef struct {
    base_t b;
    uint32_t user, org;
    const char *status, *auth_method, *ip, *ua;
    int impersonator;
    int64_t expires_ms, ended_ms;
} sess_t;

typedef struct {
    base_t b;
    uint32_t org;
    const char *name;
    char obfuscated[32];
    int perms;
    int64_t last_used_ms;
} apikey_t;

typedef struct {
    emu_rng_t rng;
    FILE *out;
    int64_t now; /* created_at of the last event */
    uint64_t count, target;
    bool ascii; /* this event writes strings with \u escapes */
    emu_buf_t ev, data;
    org_t *orgs;
    size_t norgs, caporgs;
    user_t *users;
    size_t nusers, capusers;
    om_t *oms;
    size_t noms, capoms;
    inv_t *invs;
    size_t ninvs, capinvs;
    sess_t *sess;
    size_t nsess, capsess;
    apikey_t *keys;
    size_t nkeys, capkeys;
    emu_state_t *state; /* what a correct mirror holds so far */
    size_t live_orgs, live_users;
    uint64_t serial; /* makes generated emails and names unique */
    /* Recently deleted or finished objects, for stale re-sends after them. */
    struct {
        emu_table_t t;
        uint32_t i;
    } gone[64];
    size_t ngone;
} gen_t;

/* ---- data pools: non-ASCII, quotes and backslashes on purpose ---- */

static const char *const first_names[] = {
    "Jane",   "John",    "René",   "Zoë",       "Jürgen", "Søren",     "Ángel",
    "Maëlle", "Łukasz",  "Çağla",  "Nguyễn",    "Ольга",  "Σοφία",     "太郎",
    "花子",   "Siobhán", "D'Arcy", "Mary-Jane", "Ava 😀",  "Zoë \"Z\"", "Back\\slash",
    "O'Neil", "Amélie",  "Mateo",  "Priya",
};
static const char *const first_slugs[] = {
    "jane",  "john",   "rene",      "zoe",   "juergen", "soeren", "angel",   "maelle", "lukasz",
    "cagla", "nguyen", "olga",      "sofia", "taro",    "hanako", "siobhan", "darcy",  "mary-jane",
    "ava",   "zoe.z",  "backslash", "oneil", "amelie",  "mateo",  "priya",
};
static const char *const last_names[] = {
    "Doe",
    "O'Brien \"quoted\"",
    "Müller",
    "García",
    "Ødegaard",
    "日本",
    "Smith",
    "Nguyen",
    "D'Angelo",
    "Back\\Slash",
    "Björk",
    "Ñúñez",
    "van der Berg",
    "李",
    "🦄 Unicorn",
    "Line\nBreak",
    "Tab\tSeparated",
    "Ко́злов",
    "Okafor",
    "Schmidt",
};
static const char *const org_names[] = {
    "Acme Corp",       "Globex «International»", "Initech, Inc.",  "Umbrella \"Bio\"",
    "Soylent O'Hara",  "Müller & Söhne GmbH",    "株式会社テスト", "Café Olé",
    "Back\\Slash LLC", "🚀 Rocket Labs",          "Ωmega Systems",  "Łódź Logistics",
};
static const char *const domains[] = {
    "acme.test",    "globex.test",  "initech.test", "umbrella.test", "soylent.test",
    "mueller.test", "example.test", "cafe.test",    "rocket.test",   "omega.test",
};
static const char *const locales[] = {"en-US", "fr-FR", "de-DE", "ja-JP", "pt-BR"};
static const char *const pictures[] = {
    "https://avatars.example.test/u/1.png",
    "https://cdn.example.test/p/ünï.png?s=80&d=mp",
};
static const char *const metadata[] = {
    "{}",
    "{\"plan\":\"pro\"}",
    "{\"tier\":\"gold\",\"note\":\"l'été \\\"chaud\\\"\"}",
    "{\"nested\":{\"a\":[1,2,3],\"b\":null},\"tags\":[\"x\",\"ý\"]}",
    "{\"emoji\":\"🎉\",\"path\":\"C:\\\\Temp\\\\new\"}",
};
static const char *const custom_attrs[] = {
    "{}",
    "{\"department\":\"Engineering\"}",
    "{\"department\":\"R&D\",\"cost_center\":\"42\",\"manager\":{\"email\":\"boss@acme.test\"}}",
    "{\"title\":\"Directrice générale\",\"groups\":[\"admins\",\"日本\"]}",
};
static const char *const roles[] = {"member", "admin", "billing", "viewer", "owner"};
static const char *const role_sets[] = {
    "[{\"slug\":\"member\"}]",
    "[{\"slug\":\"admin\"},{\"slug\":\"billing\"}]",
    "[{\"slug\":\"viewer\"},{\"slug\":\"member\"}]",
};
static const char *const ips[] = {"203.0.113.7", "198.51.100.42", "2001:db8::1", NULL};
static const char *const agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
    "curl/7.88.1",
    "Ünïcode-Agent/1.0 (日本; \"quoted\")",
    NULL,
};
static const char *const key_names[] = {
    "CI key", "Clé de production", "デプロイ", "Build \"bot\"", "ops\\backup", "🔑 main",
};
static const char *const permission_sets[] = {
    "[]",
    "[\"users:read\"]",
    "[\"users:read\",\"users:write\",\"audit:read\"]",
};
static const char *const impersonators[] = {
    "{\"email\":\"support@workos.test\",\"reason\":\"Ticket #42: can't log in\"}",
    "{\"email\":\"admin@acme.test\",\"reason\":null}",
};
static const char *const contexts[] = {
    NULL, /* index 0 and a few more: no context at all */
    "{\"client_id\":\"client_01HZZZZZZZZZZZZZZZZZZZZZZZ\"}",
    "{\"actor\":{\"id\":\"admin_01HX2B3C4D5E6F7G8H9J0KMNPQ\",\"source\":\"dashboard\","
    "\"name\":\"Ops 🛠\"},\"google_analytics_client_id\":\"GA1.1.123456.789\"}",
    "{\"actor\":{\"source\":\"api\",\"id\":null,\"name\":null}}",
};
static const char *const future_types[] = {
    "directory_sync.future_event",
    "widget.future_event",
    "vault.future_event",
};

/* Session auth methods and the authentication.* event that goes with each
 * (NULL: no authentication event, as for impersonation). */
static const struct {
    const char *method, *auth_type, *event;
} methods[] = {
    {"password", "password", "authentication.password_succeeded"},
    {"sso", "sso", "authentication.sso_succeeded"},
    {"oauth", "oauth", "authentication.oauth_succeeded"},
    {"magic_code", "magic_auth", "authentication.magic_auth_succeeded"},
    {"passkey", "passkey", "authentication.passkey_succeeded"},
    {"impersonation", NULL, NULL},
};

static const struct {
    const char *event, *type, *code, *message;
} failures[] = {
    {"authentication.password_failed", "password", "invalid_credentials", "Invalid credentials"},
    {"authentication.sso_failed", "sso", "sso_error", "The IdP said \"no\""},
    {"authentication.oauth_failed", "oauth", "oauth_error", "Access denied"},
    {"authentication.magic_auth_failed", "magic_auth", "invalid_code", "Code expired"},
    {"authentication.mfa_failed", "mfa", "invalid_totp", "Wrong code"},
    {"authentication.passkey_failed", "passkey", "passkey_error", "Assertion rejected"},
};

static const struct {
    const char *event, *type;
} other_successes[] = {
    {"authentication.mfa_succeeded", "mfa"},
    {"authentication.email_verification_succeeded", "email_verification"},
};

#define N_(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(N_(first_names) == N_(first_slugs), "one e-mail slug per first name");

static uint32_t pick(gen_t *g, size_t n)
{
    return emu_rng_below(&g->rng, (uint32_t)n);
}

static void grow(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return;
    *cap = *cap ? *cap * 2 : 64;
    *p = emu_xrealloc(*p, *cap * elem);
}

/* ---- JSON writing ---- */

static void put_str(gen_t *g, emu_buf_t *b, const char *s)
{
    if (s == NULL)
        emu_buf_adds(b, "null");
    else if (g->ascii)
        emu_buf_json_str_ascii(b, s);
    else
        emu_buf_json_str(b, s);
}

static void put_time(emu_buf_t *b, int64_t ms)
{
    if (ms == 0) {
        emu_buf_adds(b, "null");
        return;
    }
    char t[EMU_TIME_STRLEN];
    emu_time_format(ms, t);
    emu_buf_add(b, "\"", 1);
    emu_buf_adds(b, t);
    emu_buf_add(b, "\"", 1);
}

/* Adds ,"key": then the value writer runs. */
static void key(emu_buf_t *b, const char *k)
{
    if (b->len && b->data[b->len - 1] != '{')
        emu_buf_add(b, ",", 1);
    emu_buf_json_str(b, k);
    emu_buf_add(b, ":", 1);
}

/* ---- clock and ids ---- */

/* Advances the clock for the next event and returns its created_at. */
static int64_t tick(gen_t *g)
{
    uint32_t r = pick(g, 100);
    int64_t d;
    if (r < 70)
        d = 1 + pick(g, 50);
    else if (r < 95)
        d = 50 + pick(g, 4950);
    else
        d = 5000 + pick(g, 115000);
    g->now += d;
    return g->now;
}

/* updated_at for a change made by the event at time t: usually t itself,
 * sometimes a millisecond earlier, always after the previous change. */
static int64_t change_time(gen_t *g, const base_t *b, int64_t t)
{
    if (t - 1 > b->updated_ms && pick(g, 4) == 0)
        return t - 1;
    return t;
}

static void make_id(gen_t *g, const char *prefix, int64_t ms, char *out, size_t outlen)
{
    char ulid[EMU_ULID_STRLEN];
    emu_ulid(ms, &g->rng, ulid);
    snprintf(out, outlen, "%s%s", prefix, ulid);
}

static void random_hex(gen_t *g, char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++)
        out[i] = hex[pick(g, 16)];
    out[n] = '\0';
}

/* ---- expectations ---- */

/* Applies the winner rule to one event carrying payload for object o. */
static void expect_apply(gen_t *g, emu_table_t t, const base_t *o, int64_t updated_ms,
                         const char *payload, bool is_delete)
{
    emu_state_apply(g->state, t, o->id, true, updated_ms, payload, strlen(payload), is_delete);
}

/* ---- event output ---- */

static void emit(gen_t *g, const char *type, const char *data, int64_t at)
{
    char id[48], t[EMU_TIME_STRLEN];
    emu_buf_t *b = &g->ev;
    emu_buf_reset(b);
    make_id(g, "evt_", at, id, sizeof(id));
    emu_time_format(at, t);
    emu_buf_adds(b, "{\"object\":\"event\",\"event\":");
    emu_buf_json_str(b, type);
    emu_buf_adds(b, ",\"data\":");
    emu_buf_adds(b, data);
    uint32_t c = pick(g, 10);
    if (c < N_(contexts) && contexts[c]) {
        emu_buf_adds(b, ",\"context\":");
        emu_buf_adds(b, contexts[c]);
    }
    emu_buf_printf(b, ",\"environment_id\":null,\"id\":\"%s\",\"created_at\":\"%s\"}\n", id, t);
    fwrite(b->data, 1, b->len, g->out);
    g->count++;
}

/* Emits a mirrored object's snapshot (already in g->data) and applies it
 * to the expectations. A snapshot that changed the object (rotate) becomes
 * the current one and the previous one is kept for stale re-sends. */
static void emit_object(gen_t *g, emu_table_t t, base_t *o, const char *type, int64_t at,
                        bool is_delete, bool rotate)
{
    if (rotate) {
        if (o->snap) {
            free(o->prev);
            o->prev = o->snap;
            o->prev_event = o->snap_event;
            o->prev_ms = o->snap_ms;
        }
        o->snap = emu_xstrdup(g->data.data);
        o->snap_event = type;
        o->snap_ms = o->updated_ms;
    }
    emit(g, type, g->data.data, at);
    expect_apply(g, t, o, o->updated_ms, g->data.data, is_delete);
}

static void remember_gone(gen_t *g, emu_table_t t, uint32_t i)
{
    size_t slot = g->ngone < N_(g->gone) ? g->ngone++ : pick(g, N_(g->gone));
    g->gone[slot].t = t;
    g->gone[slot].i = i;
}

/* ---- serialisers: the data object of each type, into g->data ---- */

static void ser_org(gen_t *g, const org_t *o)
{
    emu_buf_t *b = &g->data;
    emu_buf_reset(b);
    emu_buf_adds(b, "{\"object\":\"organization\"");
    key(b, "id");
    put_str(g, b, o->b.id);
    key(b, "name");
    put_str(g, b, o->name);
    key(b, "allow_profiles_outside_organization");
    emu_buf_adds(b, "false");
    key(b, "external_id");
    put_str(g, b, o->external_id);
    key(b, "metadata");
    emu_buf_adds(b, metadata[o->meta]);
    key(b, "domains");
    if (o->domain[0]) {
        emu_buf_adds(b, "[{\"object\":\"organization_domain\",\"id\":");
        put_str(g, b, o->domain_id);
        emu_buf_adds(b, ",\"domain\":");
        put_str(g, b, o->domain);
        emu_buf_adds(b, ",\"state\":\"verified\"}]");
    } else {
        emu_buf_adds(b, "[]");
    }
    if (o->stripe[0]) {
        key(b, "stripe_customer_id");
        put_str(g, b, o->stripe);
    }
    key(b, "created_at");
    put_time(b, o->b.created_ms);
    key(b, "updated_at");
    put_time(b, o->b.updated_ms);
    emu_buf_adds(b, "}");
}

static void ser_user(gen_t *g, const user_t *u)
{
    emu_buf_t *b = &g->data;
    emu_buf_reset(b);
    emu_buf_adds(b, "{\"object\":\"user\"");
    key(b, "email");
    put_str(g, b, u->email);
    key(b, "name");
    emu_buf_adds(b, "null");
    key(b, "first_name");
    put_str(g, b, u->first);
    key(b, "last_name");
    put_str(g, b, u->last);
    key(b, "email_verified");
    emu_buf_adds(b, u->verified ? "true" : "false");
    if (u->picture || pick(g, 2)) {
        key(b, "profile_picture_url");
        put_str(g, b, u->picture);
    }
    key(b, "last_sign_in_at");
    put_time(b, u->last_sign_in_ms);
    key(b, "external_id");
    put_str(g, b, u->external_id);
    key(b, "metadata");
    emu_buf_adds(b, metadata[u->meta]);
    if (!u->omit_locale) {
        key(b, "locale");
        put_str(g, b, u->locale);
    }
    key(b, "id");
    put_str(g, b, u->b.id);
    key(b, "created_at");
    put_time(b, u->b.created_ms);
    key(b, "updated_at");
    put_time(b, u->b.updated_ms);
    emu_buf_adds(b, "}");
}

static void ser_om(gen_t *g, const om_t *m)
{
    emu_buf_t *b = &g->data;
    emu_buf_reset(b);
    emu_buf_adds(b, "{\"object\":\"organization_membership\"");
    key(b, "organization_id");
    put_str(g, b, g->orgs[m->org].b.id);
    if (pick(g, 2)) {
        key(b, "organization_name");
        put_str(g, b, g->orgs[m->org].name);
    }
    key(b, "user_id");
    put_str(g, b, g->users[m->user].b.id);
    key(b, "role");
    emu_buf_adds(b, "{\"slug\":");
    put_str(g, b, m->role);
    emu_buf_adds(b, "}");
    if (pick(g, 2)) {
        key(b, "roles");
        if (m->roles < 0) {
            emu_buf_adds(b, "[{\"slug\":");
            put_str(g, b, m->role);
            emu_buf_adds(b, "}]");
        } else {
            emu_buf_adds(b, role_sets[m->roles]);
        }
    }
    key(b, "status");
    put_str(g, b, m->status);
    key(b, "external_id");
    emu_buf_adds(b, "null");
    key(b, "metadata");
    emu_buf_adds(b, "{}");
    key(b, "id");
    put_str(g, b, m->b.id);
    key(b, "created_at");
    put_time(b, m->b.created_ms);
    key(b, "updated_at");
    put_time(b, m->b.updated_ms);
    key(b, "directory_managed");
    emu_buf_adds(b, m->directory ? "true" : "false");
    key(b, "custom_attributes");
    emu_buf_adds(b, custom_attrs[m->attrs]);
    emu_buf_adds(b, "}");
}

/* A nullable timestamp that is sometimes left out instead of null. */
static void put_opt_time(gen_t *g, emu_buf_t *b, const char *k, int64_t ms)
{
    if (ms == 0 && pick(g, 2))
        return;
    key(b, k);
    put_time(b, ms);
}

static void ser_inv(gen_t *g, const inv_t *v)
{
    emu_buf_t *b = &g->data;
    emu_buf_reset(b);
    emu_buf_adds(b, "{\"object\":\"invitation\"");
    key(b, "email");
    put_str(g, b, v->email);
    key(b, "state");
    put_str(g, b, v->state);
    put_opt_time(g, b, "accepted_at", v->accepted_ms);
    put_opt_time(g, b, "revoked_at", v->revoked_ms);
    key(b, "token");
    put_str(g, b, v->token);
    key(b, "accept_invitation_url");
    emu_buf_printf(b, "\"http://localhost:4100/user_management/invitations/accept?token=%s\"",
                   v->token);
    key(b, "organization_id");
    put_str(g, b, v->org == NO_REF ? NULL : g->orgs[v->org].b.id);
    key(b, "inviter_user_id");
    put_str(g, b, v->inviter == NO_REF ? NULL : g->users[v->inviter].b.id);
    if (v->accepted_user != NO_REF || pick(g, 2)) {
        key(b, "accepted_user_id");
        put_str(g, b, v->accepted_user == NO_REF ? NULL : g->users[v->accepted_user].b.id);
    }
    key(b, "role_slug");
    put_str(g, b, v->role_slug);
    key(b, "expires_at");
    put_time(b, v->expires_ms);
    key(b, "id");
    put_str(g, b, v->b.id);
    key(b, "created_at");
    put_time(b, v->b.created_ms);
    key(b, "updated_at");
    put_time(b, v->b.updated_ms);
    emu_buf_adds(b, "}");
}

static void ser_sess(gen_t *g, const sess_t *s)
{
    emu_buf_t *b = &g->data;
    emu_buf_reset(b);
    emu_buf_adds(b, "{\"object\":\"session\"");
    key(b, "user_id");
    put_str(g, b, g->users[s->user].b.id);
    key(b, "organization_id");
    put_str(g, b, s->org == NO_REF ? NULL : g->orgs[s->org].b.id);
    key(b, "ip_address");
    put_str(g, b, s->ip);
    key(b, "user_agent");
    put_str(g, b, s->ua);
    key(b, "auth_method");
    put_str(g, b, s->auth_method);
    key(b, "status");
    put_str(g, b, s->status);
    if (s->impersonator >= 0) {
        key(b, "impersonator");
        emu_buf_adds(b, impersonators[s->impersonator]);
    }
    key(b, "expires_at");
    put_time(b, s->expires_ms);
    key(b, "ended_at");
    put_time(b, s->ended_ms);
    key(b, "id");
    put_str(g, b, s->b.id);
    key(b, "created_at");
    put_time(b, s->b.created_ms);
    key(b, "updated_at");
    put_time(b, s->b.updated_ms);
    emu_buf_adds(b, "}");
}

static void ser_key(gen_t *g, const apikey_t *k, bool with_secret)
{
    emu_buf_t *b = &g->data;
    emu_buf_reset(b);
    emu_buf_adds(b, "{\"object\":\"api_key\"");
    key(b, "id");
    put_str(g, b, k->b.id);
    key(b, "owner");
    emu_buf_adds(b, "{\"type\":\"organization\",\"id\":");
    put_str(g, b, g->orgs[k->org].b.id);
    emu_buf_adds(b, "}");
    key(b, "name");
    put_str(g, b, k->name);
    key(b, "obfuscated_value");
    put_str(g, b, k->obfuscated);
    if (with_secret) {
        char secret[41];
        random_hex(g, secret, 40);
        key(b, "value");
        emu_buf_printf(b, "\"sk_live_%s\"", secret);
    }
    key(b, "permissions");
    emu_buf_adds(b, permission_sets[k->perms]);
    key(b, "last_used_at");
    put_time(b, k->last_used_ms);
    key(b, "created_at");
    put_time(b, k->b.created_ms);
    key(b, "updated_at");
    put_time(b, k->b.updated_ms);
    emu_buf_adds(b, "}");
}

/* ---- picking live objects ---- */

static bool pick_live_org(gen_t *g, uint32_t *out)
{
    for (int tries = 0; tries < 16 && g->norgs; tries++) {
        uint32_t i = pick(g, g->norgs);
        if (!g->orgs[i].b.deleted) {
            *out = i;
            return true;
        }
    }
    return false;
}

static bool pick_live_user(gen_t *g, uint32_t *out)
{
    for (int tries = 0; tries < 16 && g->nusers; tries++) {
        /* Favour recent users so activity clusters on living accounts. */
        uint32_t i = pick(g, 3)
                         ? (uint32_t)(g->nusers - 1 - pick(g, g->nusers < 200 ? g->nusers : 200))
                         : pick(g, g->nusers);
        if (!g->users[i].b.deleted) {
            *out = i;
            return true;
        }
    }
    return false;
}

static bool pick_live_om(gen_t *g, uint32_t *out)
{
    for (int tries = 0; tries < 16 && g->noms; tries++) {
        uint32_t i = pick(g, g->noms);
        if (!g->oms[i].b.deleted) {
            *out = i;
            return true;
        }
    }
    return false;
}

static bool pick_inv(gen_t *g, const char *state, uint32_t *out)
{
    for (int tries = 0; tries < 16 && g->ninvs; tries++) {
        uint32_t i = (uint32_t)(g->ninvs - 1 - pick(g, g->ninvs < 100 ? g->ninvs : 100));
        if (strcmp(g->invs[i].state, state) == 0) {
            *out = i;
            return true;
        }
    }
    return false;
}

static bool pick_active_session(gen_t *g, uint32_t *out)
{
    for (int tries = 0; tries < 16 && g->nsess; tries++) {
        uint32_t i = (uint32_t)(g->nsess - 1 - pick(g, g->nsess < 200 ? g->nsess : 200));
        if (strcmp(g->sess[i].status, "active") == 0) {
            *out = i;
            return true;
        }
    }
    return false;
}

static bool pick_live_key(gen_t *g, uint32_t *out)
{
    for (int tries = 0; tries < 16 && g->nkeys; tries++) {
        uint32_t i = pick(g, g->nkeys);
        if (!g->keys[i].b.deleted) {
            *out = i;
            return true;
        }
    }
    return false;
}

/* ---- actions: each returns the number of events it would emit (when
 * dry) or emits them; 0 means not possible right now ---- */

static void new_base(gen_t *g, base_t *b, const char *prefix, int64_t at)
{
    memset(b, 0, sizeof(*b));
    make_id(g, prefix, at, b->id, sizeof(b->id));
    b->created_ms = b->updated_ms = at;
}

static void org_create(gen_t *g)
{
    int64_t t = tick(g);
    grow((void **)&g->orgs, &g->caporgs, g->norgs, sizeof(org_t));
    org_t *o = &g->orgs[g->norgs++];
    g->live_orgs++;
    new_base(g, &o->b, "org_", t);
    emu_buf_t name = {0};
    emu_buf_printf(&name, "%s %llu", org_names[pick(g, N_(org_names))],
                   (unsigned long long)++g->serial);
    o->name = name.data;
    o->external_id = NULL;
    if (pick(g, 3)) {
        emu_buf_t ext = {0};
        emu_buf_printf(&ext, "acme-%llu", (unsigned long long)g->serial);
        o->external_id = ext.data;
    }
    o->meta = (int)pick(g, N_(metadata));
    o->domain[0] = o->stripe[0] = '\0';
    if (pick(g, 2)) {
        snprintf(o->domain, sizeof(o->domain), "%llu.%s", (unsigned long long)g->serial,
                 domains[pick(g, N_(domains))]);
        make_id(g, "org_domain_", t, o->domain_id, sizeof(o->domain_id));
    }
    if (pick(g, 4) == 0) {
        char hex[15];
        random_hex(g, hex, 14);
        snprintf(o->stripe, sizeof(o->stripe), "cus_%s", hex);
    }
    ser_org(g, o);
    emit_object(g, EMU_TBL_ORGANIZATIONS, &o->b, "organization.created", t, false, true);
}

static void org_update(gen_t *g, uint32_t i)
{
    int64_t t = tick(g);
    org_t *o = &g->orgs[i];
    o->b.updated_ms = change_time(g, &o->b, t);
    switch (pick(g, 3)) {
    case 0: {
        emu_buf_t name = {0};
        emu_buf_printf(&name, "%s (renamed %llu)", org_names[pick(g, N_(org_names))],
                       (unsigned long long)++g->serial);
        free(o->name);
        o->name = name.data;
        break;
    }
    case 1:
        free(o->external_id);
        o->external_id = NULL;
        if (pick(g, 2)) {
            emu_buf_t ext = {0};
            emu_buf_printf(&ext, "ext-org-%llu", (unsigned long long)++g->serial);
            o->external_id = ext.data;
        }
        break;
    default:
        o->meta = (int)pick(g, N_(metadata));
        break;
    }
    ser_org(g, o);
    emit_object(g, EMU_TBL_ORGANIZATIONS, &o->b, "organization.updated", t, false, true);
}

static void om_delete(gen_t *g, uint32_t i)
{
    int64_t t = tick(g);
    om_t *m = &g->oms[i];
    /* Deletes repeat the snapshot, updated_at included. */
    ser_om(g, m);
    emit_object(g, EMU_TBL_MEMBERSHIPS, &m->b, "organization_membership.deleted", t, true, false);
    m->b.deleted = true;
    remember_gone(g, EMU_TBL_MEMBERSHIPS, i);
}

static size_t org_live_oms(const gen_t *g, uint32_t org)
{
    size_t n = 0;
    for (size_t i = 0; i < g->noms; i++)
        n += g->oms[i].org == org && !g->oms[i].b.deleted;
    return n;
}

static void org_delete(gen_t *g, uint32_t i)
{
    for (size_t k = 0; k < g->noms; k++)
        if (g->oms[k].org == i && !g->oms[k].b.deleted)
            om_delete(g, (uint32_t)k);
    int64_t t = tick(g);
    org_t *o = &g->orgs[i];
    ser_org(g, o);
    emit_object(g, EMU_TBL_ORGANIZATIONS, &o->b, "organization.deleted", t, true, false);
    o->b.deleted = true;
    g->live_orgs--;
    remember_gone(g, EMU_TBL_ORGANIZATIONS, i);
}

static uint32_t user_add(gen_t *g, int64_t t, const char *email)
{
    grow((void **)&g->users, &g->capusers, g->nusers, sizeof(user_t));
    uint32_t idx = (uint32_t)g->nusers++;
    g->live_users++;
    user_t *u = &g->users[idx];
    memset(u, 0, sizeof(*u));
    new_base(g, &u->b, "user_", t);
    uint32_t f = pick(g, N_(first_names));
    u->first = pick(g, 10) ? first_names[f] : NULL;
    u->last = pick(g, 8) ? last_names[pick(g, N_(last_names))] : NULL;
    if (email) {
        u->email = emu_xstrdup(email);
    } else {
        emu_buf_t e = {0};
        if (pick(g, 8) == 0)
            emu_buf_printf(&e, "rené.ünïcode.%llu@%s", (unsigned long long)++g->serial,
                           domains[pick(g, N_(domains))]);
        else if (pick(g, 10) == 0)
            emu_buf_printf(&e, "o'brien+%s.%llu@%s", first_slugs[f],
                           (unsigned long long)++g->serial, domains[pick(g, N_(domains))]);
        else
            emu_buf_printf(&e, "%s.%llu@%s", first_slugs[f], (unsigned long long)++g->serial,
                           domains[pick(g, N_(domains))]);
        u->email = e.data;
    }
    u->verified = pick(g, 3) != 0;
    u->external_id = NULL;
    if (pick(g, 3) == 0) {
        emu_buf_t ext = {0};
        emu_buf_printf(&ext, "ext-%llu", (unsigned long long)++g->serial);
        u->external_id = ext.data;
    }
    /* Locale is left out only for users who never have one, so "missing"
     * and "null" describe the same state. */
    uint32_t lm = pick(g, 4);
    u->omit_locale = lm == 0;
    u->locale = lm >= 2 ? locales[pick(g, N_(locales))] : NULL;
    u->picture = pick(g, 5) == 0 ? pictures[pick(g, N_(pictures))] : NULL;
    u->meta = (int)pick(g, N_(metadata));
    return idx;
}

static void user_create(gen_t *g)
{
    int64_t t = tick(g);
    uint32_t idx = user_add(g, t, NULL);
    user_t *u = &g->users[idx];
    ser_user(g, u);
    emit_object(g, EMU_TBL_USERS, &u->b, "user.created", t, false, true);
}

static void user_update(gen_t *g, uint32_t i)
{
    int64_t t = tick(g);
    user_t *u = &g->users[i];
    u->b.updated_ms = change_time(g, &u->b, t);
    switch (pick(g, 6)) {
    case 0:
        u->first = first_names[pick(g, N_(first_names))];
        break;
    case 1:
        u->last = pick(g, 6) ? last_names[pick(g, N_(last_names))] : NULL;
        break;
    case 2:
        u->verified = !u->verified;
        break;
    case 3:
        u->last_sign_in_ms = t - pick(g, 1000);
        break;
    case 4:
        if (!u->omit_locale)
            u->locale = pick(g, 4) ? locales[pick(g, N_(locales))] : NULL;
        else
            u->meta = (int)pick(g, N_(metadata));
        break;
    default:
        free(u->external_id);
        u->external_id = NULL;
        if (pick(g, 2)) {
            emu_buf_t ext = {0};
            emu_buf_printf(&ext, "ext-%llu", (unsigned long long)++g->serial);
            u->external_id = ext.data;
        }
        break;
    }
    ser_user(g, u);
    emit_object(g, EMU_TBL_USERS, &u->b, "user.updated", t, false, true);
}

static size_t user_live_oms(const gen_t *g, uint32_t i)
{
    const user_t *u = &g->users[i];
    size_t n = 0;
    for (size_t k = 0; k < u->noms; k++)
        n += !g->oms[u->oms[k]].b.deleted;
    return n;
}

static void user_delete(gen_t *g, uint32_t i)
{
    /* WorkOS removes the memberships first, each repeating its own
     * updated_at, then the user. */
    for (size_t k = 0; k < g->users[i].noms; k++) {
        uint32_t m = g->users[i].oms[k];
        if (!g->oms[m].b.deleted)
            om_delete(g, m);
    }
    int64_t t = tick(g);
    user_t *u = &g->users[i];
    ser_user(g, u);
    emit_object(g, EMU_TBL_USERS, &u->b, "user.deleted", t, true, false);
    u->b.deleted = true;
    g->live_users--;
    remember_gone(g, EMU_TBL_USERS, i);
}

static bool user_in_org(const gen_t *g, uint32_t user, uint32_t org)
{
    const user_t *u = &g->users[user];
    for (size_t k = 0; k < u->noms; k++) {
        const om_t *m = &g->oms[u->oms[k]];
        if (m->org == org && !m->b.deleted)
            return true;
    }
    return false;
}

static void om_create(gen_t *g, uint32_t user, uint32_t org, const char *role)
{
    int64_t t = tick(g);
    grow((void **)&g->oms, &g->capoms, g->noms, sizeof(om_t));
    uint32_t idx = (uint32_t)g->noms++;
    om_t *m = &g->oms[idx];
    memset(m, 0, sizeof(*m));
    new_base(g, &m->b, "om_", t);
    m->user = user;
    m->org = org;
    m->role = role ? role : roles[pick(g, 3) ? 0 : pick(g, N_(roles))];
    m->roles = -1;
    m->status = pick(g, 8) ? "active" : "pending";
    m->directory = pick(g, 6) == 0;
    m->attrs = m->directory ? (int)pick(g, N_(custom_attrs)) : 0;
    user_t *u = &g->users[user];
    grow((void **)&u->oms, &u->capoms, u->noms, sizeof(uint32_t));
    u->oms[u->noms++] = idx;
    ser_om(g, m);
    emit_object(g, EMU_TBL_MEMBERSHIPS, &m->b, "organization_membership.created", t, false, true);
}

static void om_update(gen_t *g, uint32_t i)
{
    int64_t t = tick(g);
    om_t *m = &g->oms[i];
    m->b.updated_ms = change_time(g, &m->b, t);
    switch (pick(g, 4)) {
    case 0:
        m->role = roles[pick(g, N_(roles))];
        m->roles = -1;
        break;
    case 1:
        m->roles = (int)pick(g, N_(role_sets));
        break;
    case 2:
        m->status = strcmp(m->status, "active") == 0 ? "inactive" : "active";
        break;
    default:
        m->attrs = (int)pick(g, N_(custom_attrs));
        break;
    }
    ser_om(g, m);
    emit_object(g, EMU_TBL_MEMBERSHIPS, &m->b, "organization_membership.updated", t, false, true);
}

static void inv_create(gen_t *g)
{
    int64_t t = tick(g);
    grow((void **)&g->invs, &g->capinvs, g->ninvs, sizeof(inv_t));
    inv_t *v = &g->invs[g->ninvs++];
    memset(v, 0, sizeof(*v));
    new_base(g, &v->b, "inv_", t);
    uint32_t existing;
    emu_buf_t e = {0};
    if (pick(g, 5) == 0 && pick_live_user(g, &existing))
        emu_buf_adds(&e, g->users[existing].email);
    else
        emu_buf_printf(&e, "%s.invite.%llu@%s", first_slugs[pick(g, N_(first_slugs))],
                       (unsigned long long)++g->serial, domains[pick(g, N_(domains))]);
    v->email = e.data;
    v->state = "pending";
    uint32_t org, inviter;
    v->org = pick(g, 8) && pick_live_org(g, &org) ? org : NO_REF;
    v->inviter = pick(g, 2) && pick_live_user(g, &inviter) ? inviter : NO_REF;
    v->accepted_user = NO_REF;
    v->role_slug = pick(g, 2) ? NULL : roles[pick(g, N_(roles))];
    random_hex(g, v->token, 32);
    v->expires_ms = t + 3LL * 86400000;
    ser_inv(g, v);
    emit_object(g, EMU_TBL_INVITATIONS, &v->b, "invitation.created", t, false, true);
}

static void inv_resend(gen_t *g, uint32_t i)
{
    int64_t t = tick(g);
    inv_t *v = &g->invs[i];
    v->b.updated_ms = change_time(g, &v->b, t);
    random_hex(g, v->token, 32);
    v->expires_ms = t + 3LL * 86400000;
    ser_inv(g, v);
    emit_object(g, EMU_TBL_INVITATIONS, &v->b, "invitation.resent", t, false, true);
}

static void inv_revoke(gen_t *g, uint32_t i)
{
    int64_t t = tick(g);
    inv_t *v = &g->invs[i];
    v->b.updated_ms = change_time(g, &v->b, t);
    v->state = "revoked";
    v->revoked_ms = v->b.updated_ms;
    ser_inv(g, v);
    emit_object(g, EMU_TBL_INVITATIONS, &v->b, "invitation.revoked", t, false, true);
    remember_gone(g, EMU_TBL_INVITATIONS, i);
}

/* The user an invitation is for, if one exists and is alive. */
static uint32_t inv_user(const gen_t *g, const inv_t *v)
{
    for (size_t k = g->nusers; k-- > 0;)
        if (!g->users[k].b.deleted && strcmp(g->users[k].email, v->email) == 0)
            return (uint32_t)k;
    return NO_REF;
}

static size_t inv_accept_events(const gen_t *g, uint32_t i)
{
    const inv_t *v = &g->invs[i];
    uint32_t u = inv_user(g, v);
    size_t n = 1 + (u == NO_REF);
    bool member = u != NO_REF && v->org != NO_REF && user_in_org(g, u, v->org);
    if (v->org != NO_REF && !g->orgs[v->org].b.deleted && !member)
        n++;
    return n;
}

static void inv_accept(gen_t *g, uint32_t i)
{
    uint32_t u = inv_user(g, &g->invs[i]);
    if (u == NO_REF) {
        int64_t t = tick(g);
        u = user_add(g, t, g->invs[i].email);
        g->users[u].verified = true;
        ser_user(g, &g->users[u]);
        emit_object(g, EMU_TBL_USERS, &g->users[u].b, "user.created", t, false, true);
    }
    int64_t t = tick(g);
    inv_t *v = &g->invs[i];
    v->b.updated_ms = change_time(g, &v->b, t);
    v->state = "accepted";
    v->accepted_ms = v->b.updated_ms;
    v->accepted_user = u;
    ser_inv(g, v);
    emit_object(g, EMU_TBL_INVITATIONS, &v->b, "invitation.accepted", t, false, true);
    remember_gone(g, EMU_TBL_INVITATIONS, i);
    uint32_t org = v->org;
    if (org != NO_REF && !g->orgs[org].b.deleted && !user_in_org(g, u, org))
        om_create(g, u, org, v->role_slug);
}

static void put_auth_common(gen_t *g, emu_buf_t *b, const char *type, const char *status,
                            const user_t *u, const char *email, const char *ip, const char *ua)
{
    emu_buf_reset(b);
    emu_buf_adds(b, "{\"type\":");
    put_str(g, b, type);
    key(b, "status");
    put_str(g, b, status);
    key(b, "user_id");
    put_str(g, b, u ? u->b.id : NULL);
    key(b, "email");
    put_str(g, b, u ? u->email : email);
    key(b, "ip_address");
    put_str(g, b, ip);
    key(b, "user_agent");
    put_str(g, b, ua);
}

static size_t session_events(uint32_t m)
{
    return methods[m].event ? 2 : 1;
}

static void session_create(gen_t *g, uint32_t user, uint32_t m)
{
    int64_t t = tick(g);
    grow((void **)&g->sess, &g->capsess, g->nsess, sizeof(sess_t));
    sess_t *s = &g->sess[g->nsess++];
    memset(s, 0, sizeof(*s));
    new_base(g, &s->b, "session_", t);
    s->user = user;
    s->org = NO_REF;
    const user_t *u = &g->users[user];
    for (size_t k = 0; k < u->noms; k++) {
        if (!g->oms[u->oms[k]].b.deleted && pick(g, 2)) {
            s->org = g->oms[u->oms[k]].org;
            break;
        }
    }
    s->status = "active";
    s->auth_method = methods[m].method;
    s->ip = ips[pick(g, N_(ips))];
    s->ua = agents[pick(g, N_(agents))];
    s->impersonator = methods[m].event ? -1 : (int)pick(g, N_(impersonators));
    s->expires_ms = t + 30LL * 86400000;
    ser_sess(g, s);
    emit_object(g, EMU_TBL_SESSIONS, &s->b, "session.created", t, false, true);
    if (methods[m].event) {
        int64_t t2 = tick(g);
        put_auth_common(g, &g->data, methods[m].auth_type, "succeeded", u, NULL, s->ip, s->ua);
        emu_buf_adds(&g->data, "}");
        emit(g, methods[m].event, g->data.data, t2);
    }
}

static void session_revoke(gen_t *g, uint32_t i)
{
    int64_t t = tick(g);
    sess_t *s = &g->sess[i];
    s->b.updated_ms = change_time(g, &s->b, t);
    s->status = "revoked";
    s->ended_ms = s->b.updated_ms;
    ser_sess(g, s);
    emit_object(g, EMU_TBL_SESSIONS, &s->b, "session.revoked", t, false, true);
    remember_gone(g, EMU_TBL_SESSIONS, i);
}

static void key_create(gen_t *g, uint32_t org)
{
    int64_t t = tick(g);
    grow((void **)&g->keys, &g->capkeys, g->nkeys, sizeof(apikey_t));
    apikey_t *k = &g->keys[g->nkeys++];
    memset(k, 0, sizeof(*k));
    new_base(g, &k->b, "api_key_", t);
    k->org = org;
    k->name = key_names[pick(g, N_(key_names))];
    char tail[5];
    random_hex(g, tail, 4);
    snprintf(k->obfuscated, sizeof(k->obfuscated), "sk_...%s", tail);
    k->perms = (int)pick(g, N_(permission_sets));
    ser_key(g, k, pick(g, 3) == 0);
    emit_object(g, EMU_TBL_API_KEYS, &k->b, "api_key.created", t, false, true);
}

static void key_revoke(gen_t *g, uint32_t i)
{
    int64_t t = tick(g);
    apikey_t *k = &g->keys[i];
    /* The revoked key reports when it was last used; that is a change. */
    k->b.updated_ms = change_time(g, &k->b, t);
    k->last_used_ms = pick(g, 2) ? k->b.updated_ms - pick(g, 5000) : 0;
    if (k->last_used_ms != 0 && k->last_used_ms <= k->b.created_ms)
        k->last_used_ms = k->b.created_ms + 1;
    ser_key(g, k, false);
    emit_object(g, EMU_TBL_API_KEYS, &k->b, "api_key.revoked", t, true, true);
    k->b.deleted = true;
    remember_gone(g, EMU_TBL_API_KEYS, i);
}

static void auth_failure(gen_t *g)
{
    int64_t t = tick(g);
    uint32_t f = pick(g, N_(failures));
    uint32_t ui;
    const user_t *u = pick(g, 4) && pick_live_user(g, &ui) ? &g->users[ui] : NULL;
    put_auth_common(g, &g->data, failures[f].type, "failed", u, "nobody@unknown.test",
                    ips[pick(g, N_(ips))], agents[pick(g, N_(agents))]);
    key(&g->data, "error");
    emu_buf_adds(&g->data, "{\"code\":");
    put_str(g, &g->data, failures[f].code);
    emu_buf_adds(&g->data, ",\"message\":");
    put_str(g, &g->data, failures[f].message);
    emu_buf_adds(&g->data, "}}");
    emit(g, failures[f].event, g->data.data, t);
}

static void auth_other(gen_t *g, uint32_t user)
{
    int64_t t = tick(g);
    uint32_t k = pick(g, N_(other_successes));
    put_auth_common(g, &g->data, other_successes[k].type, "succeeded", &g->users[user], NULL,
                    ips[pick(g, N_(ips))], agents[pick(g, N_(agents))]);
    emu_buf_adds(&g->data, "}");
    emit(g, other_successes[k].event, g->data.data, t);
}

/* magic_auth.created, email_verification.created, password_reset.created:
 * log-only objects carrying a one-time secret. */
static void one_time_secret(gen_t *g, uint32_t user)
{
    static const struct {
        const char *event, *object, *prefix, *secret;
        int64_t ttl;
    } kinds[] = {
        {"magic_auth.created", "magic_auth", "magic_auth_", "code", 600000},
        {"email_verification.created", "email_verification", "email_verification_", "code",
         86400000},
        {"password_reset.created", "password_reset", "password_reset_", "token", 3600000},
    };
    int64_t t = tick(g);
    uint32_t k = pick(g, N_(kinds));
    const user_t *u = &g->users[user];
    char id[64];
    make_id(g, kinds[k].prefix, t, id, sizeof(id));
    emu_buf_t *b = &g->data;
    emu_buf_reset(b);
    emu_buf_adds(b, "{\"object\":");
    put_str(g, b, kinds[k].object);
    key(b, "id");
    put_str(g, b, id);
    key(b, "user_id");
    put_str(g, b, u->b.id);
    key(b, "email");
    put_str(g, b, u->email);
    key(b, "expires_at");
    put_time(b, t + kinds[k].ttl);
    key(b, kinds[k].secret);
    if (strcmp(kinds[k].secret, "code") == 0)
        emu_buf_printf(b, "\"%06u\"", emu_rng_below(&g->rng, 1000000));
    else {
        char secret[40];
        random_hex(g, secret, 32);
        emu_buf_printf(b, "\"%s\"", secret);
    }
    key(b, "created_at");
    put_time(b, t);
    key(b, "updated_at");
    put_time(b, t);
    emu_buf_adds(b, "}");
    emit(g, kinds[k].event, b->data, t);
}

static void future_event(gen_t *g)
{
    int64_t t = tick(g);
    char id[48];
    make_id(g, "fut_", t, id, sizeof(id));
    emu_buf_t *b = &g->data;
    emu_buf_reset(b);
    emu_buf_adds(b, "{\"object\":\"future_thing\"");
    key(b, "id");
    put_str(g, b, id);
    key(b, "shape");
    emu_buf_adds(b, "{\"list\":[1,\"two\",{\"three\":3.5}],\"flag\":true,\"none\":null}");
    key(b, "label");
    put_str(g, b, "¿Qué es esto? \"new\" \\ 未来");
    key(b, "created_at");
    put_time(b, t);
    emu_buf_adds(b, "}");
    emit(g, future_types[pick(g, N_(future_types))], b->data, t);
}

static base_t *object_base(gen_t *g, emu_table_t t, uint32_t i)
{
    switch (t) {
    case EMU_TBL_ORGANIZATIONS:
        return &g->orgs[i].b;
    case EMU_TBL_USERS:
        return &g->users[i].b;
    case EMU_TBL_MEMBERSHIPS:
        return &g->oms[i].b;
    case EMU_TBL_INVITATIONS:
        return &g->invs[i].b;
    case EMU_TBL_SESSIONS:
        return &g->sess[i].b;
    case EMU_TBL_API_KEYS:
        return &g->keys[i].b;
    case EMU_TBL_COUNT:
        break;
    }
    abort();
}

static size_t table_len(const gen_t *g, emu_table_t t)
{
    switch (t) {
    case EMU_TBL_ORGANIZATIONS:
        return g->norgs;
    case EMU_TBL_USERS:
        return g->nusers;
    case EMU_TBL_MEMBERSHIPS:
        return g->noms;
    case EMU_TBL_INVITATIONS:
        return g->ninvs;
    case EMU_TBL_SESSIONS:
        return g->nsess;
    case EMU_TBL_API_KEYS:
        return g->nkeys;
    case EMU_TBL_COUNT:
        break;
    }
    return 0;
}

/* Re-sends an older snapshot of an object as a new event: what a late
 * delivery looks like. Half of them target objects already deleted or
 * finished, which must stay that way. */
static bool stale_resend(gen_t *g)
{
    for (int tries = 0; tries < 8; tries++) {
        emu_table_t t;
        uint32_t i;
        if (g->ngone && pick(g, 2)) {
            uint32_t s = pick(g, g->ngone);
            t = g->gone[s].t;
            i = g->gone[s].i;
        } else {
            t = (emu_table_t)pick(g, EMU_TBL_COUNT);
            size_t n = table_len(g, t);
            if (n == 0)
                continue;
            i = pick(g, n);
        }
        base_t *o = object_base(g, t, i);
        if (o->prev == NULL)
            continue;
        int64_t at = tick(g);
        emit(g, o->prev_event, o->prev, at);
        expect_apply(g, t, o, o->prev_ms, o->prev, false);
        return true;
    }
    return false;
}

/* Re-sends the current snapshot unchanged: a tie on updated_at. */
static bool duplicate_resend(gen_t *g)
{
    uint32_t i;
    if (!pick_live_user(g, &i) || g->users[i].b.snap == NULL)
        return false;
    base_t *o = &g->users[i].b;
    int64_t at = tick(g);
    emit(g, o->snap_event, o->snap, at);
    expect_apply(g, EMU_TBL_USERS, o, o->snap_ms, o->snap, false);
    return true;
}

typedef enum {
    ACT_ORG_CREATE,  /* organization.created */
    ACT_ORG_UPDATE,  /* organization.updated */
    ACT_ORG_DELETE,  /* memberships deleted, then organization.deleted */
    ACT_USER_CREATE, /* user.created */
    ACT_USER_UPDATE, /* user.updated */
    ACT_USER_DELETE, /* memberships deleted, then user.deleted */
    ACT_OM_CREATE,   /* organization_membership.created */
    ACT_OM_UPDATE,   /* organization_membership.updated */
    ACT_OM_DELETE,   /* organization_membership.deleted */
    ACT_INV_CREATE,  /* invitation.created */
    ACT_INV_RESEND,  /* invitation.resent */
    ACT_INV_ACCEPT,  /* [user.created], invitation.accepted, [membership created] */
    ACT_INV_REVOKE,  /* invitation.revoked */
    ACT_SESS_CREATE, /* session.created + authentication.*_succeeded */
    ACT_SESS_REVOKE, /* session.revoked */
    ACT_AUTH_FAIL,   /* authentication.*_failed */
    ACT_AUTH_OTHER,  /* authentication.mfa/email_verification_succeeded */
    ACT_ONE_TIME,    /* magic_auth / email_verification / password_reset created */
    ACT_KEY_CREATE,  /* api_key.created */
    ACT_KEY_REVOKE,  /* api_key.revoked */
    ACT_STALE,       /* an older snapshot re-sent */
    ACT_DUPLICATE,   /* the current snapshot re-sent */
    ACT_FUTURE,      /* an event type nobody knows yet */
    ACT_COUNT,
} action_t;

/* Relative frequency of each action (per mille-ish; only ratios matter). */
static uint32_t weight(const gen_t *g, action_t a)
{
    size_t want_orgs = 3 + g->target / 400, want_users = 5 + g->target / 25;
    switch (a) {
    case ACT_ORG_CREATE:
        return g->live_orgs < want_orgs ? 400 : 5;
    case ACT_ORG_UPDATE:
        return 300;
    case ACT_ORG_DELETE:
        return 2;
    case ACT_USER_CREATE:
        return g->live_users < want_users ? 1200 : 150;
    case ACT_USER_UPDATE:
        return 800;
    case ACT_USER_DELETE:
        return 60;
    case ACT_OM_CREATE:
        return 600;
    case ACT_OM_UPDATE:
        return 500;
    case ACT_OM_DELETE:
        return 80;
    case ACT_INV_CREATE:
        return 300;
    case ACT_INV_RESEND:
        return 100;
    case ACT_INV_ACCEPT:
        return 150;
    case ACT_INV_REVOKE:
        return 100;
    case ACT_SESS_CREATE:
        return 1000;
    case ACT_SESS_REVOKE:
        return 400;
    case ACT_AUTH_FAIL:
        return 400;
    case ACT_AUTH_OTHER:
        return 150;
    case ACT_ONE_TIME:
        return 300;
    case ACT_KEY_CREATE:
        return 200;
    case ACT_KEY_REVOKE:
        return 80;
    case ACT_STALE:
        return 200;
    case ACT_DUPLICATE:
        return 50;
    case ACT_FUTURE:
        return 30;
    case ACT_COUNT:
        break;
    }
    return 0;
}

/* Runs one action if it fits in the remaining budget; false when it could
 * not run (no suitable object, or too many events for what is left). */
static bool step(gen_t *g, action_t a)
{
    uint64_t left = g->target - g->count;
    uint32_t i, j;
    switch (a) {
    case ACT_ORG_CREATE:
        org_create(g);
        return true;
    case ACT_ORG_UPDATE:
        if (!pick_live_org(g, &i))
            return false;
        org_update(g, i);
        return true;
    case ACT_ORG_DELETE:
        /* Keep a few organizations around for everything else. */
        if (g->live_orgs < 4 || !pick_live_org(g, &i) || 1 + org_live_oms(g, i) > left)
            return false;
        org_delete(g, i);
        return true;
    case ACT_USER_CREATE:
        user_create(g);
        return true;
    case ACT_USER_UPDATE:
        if (!pick_live_user(g, &i))
            return false;
        user_update(g, i);
        return true;
    case ACT_USER_DELETE:
        if (!pick_live_user(g, &i) || 1 + user_live_oms(g, i) > left)
            return false;
        user_delete(g, i);
        return true;
    case ACT_OM_CREATE:
        if (!pick_live_user(g, &i) || !pick_live_org(g, &j) || user_in_org(g, i, j))
            return false;
        om_create(g, i, j, NULL);
        return true;
    case ACT_OM_UPDATE:
        if (!pick_live_om(g, &i))
            return false;
        om_update(g, i);
        return true;
    case ACT_OM_DELETE:
        if (!pick_live_om(g, &i))
            return false;
        om_delete(g, i);
        return true;
    case ACT_INV_CREATE:
        inv_create(g);
        return true;
    case ACT_INV_RESEND:
        if (!pick_inv(g, "pending", &i))
            return false;
        inv_resend(g, i);
        return true;
    case ACT_INV_ACCEPT:
        if (!pick_inv(g, "pending", &i) || inv_accept_events(g, i) > left)
            return false;
        inv_accept(g, i);
        return true;
    case ACT_INV_REVOKE:
        if (!pick_inv(g, "pending", &i))
            return false;
        inv_revoke(g, i);
        return true;
    case ACT_SESS_CREATE:
        j = pick(g, N_(methods));
        if (!pick_live_user(g, &i) || session_events(j) > left)
            return false;
        session_create(g, i, j);
        return true;
    case ACT_SESS_REVOKE:
        if (!pick_active_session(g, &i))
            return false;
        session_revoke(g, i);
        return true;
    case ACT_AUTH_FAIL:
        auth_failure(g);
        return true;
    case ACT_AUTH_OTHER:
        if (!pick_live_user(g, &i))
            return false;
        auth_other(g, i);
        return true;
    case ACT_ONE_TIME:
        if (!pick_live_user(g, &i))
            return false;
        one_time_secret(g, i);
        return true;
    case ACT_KEY_CREATE:
        if (!pick_live_org(g, &i))
            return false;
        key_create(g, i);
        return true;
    case ACT_KEY_REVOKE:
        if (!pick_live_key(g, &i))
            return false;
        key_revoke(g, i);
        return true;
    case ACT_STALE:
        return stale_resend(g);
    case ACT_DUPLICATE:
        return duplicate_resend(g);
    case ACT_FUTURE:
        future_event(g);
        return true;
    case ACT_COUNT:
        break;
    }
    return false;
}

/* ---- a populated environment (--users) ---- */

/* Creates n users, about n/20 organizations, one or two memberships per
 * user (mostly active), zero to three sessions per user (about a third of
 * them revoked later), one to three API keys per organization and an
 * invitation for about one user in ten, as ordinary events. */
static void populate(gen_t *g, uint64_t n)
{
    uint64_t norgs = n / 20 ? n / 20 : 1;
    for (uint64_t i = 0; i < norgs; i++) {
        org_create(g);
        uint32_t keys = 1 + pick(g, 3);
        for (uint32_t k = 0; k < keys; k++)
            key_create(g, (uint32_t)(g->norgs - 1));
    }
    for (uint64_t i = 0; i < n; i++) {
        g->ascii = emu_rng_below(&g->rng, 25) == 0;
        user_create(g);
        uint32_t u = (uint32_t)(g->nusers - 1);
        uint32_t memberships = 1 + (pick(g, 4) == 0);
        for (uint32_t m = 0; m < memberships; m++) {
            uint32_t org = pick(g, g->norgs);
            if (!user_in_org(g, u, org))
                om_create(g, u, org, NULL);
        }
        uint32_t sessions = pick(g, 4);
        for (uint32_t k = 0; k < sessions; k++)
            session_create(g, u, pick(g, N_(methods)));
        if (pick(g, 10) == 0)
            inv_create(g);
    }
    for (size_t i = 0; i < g->nsess; i++)
        if (pick(g, 3) == 0)
            session_revoke(g, (uint32_t)i);
}

/* ---- expected state ---- */

static void add_field(cJSON *fields, const char *name, const cJSON *v)
{
    if (v == NULL)
        cJSON_AddNullToObject(fields, name);
    else
        cJSON_AddItemToObject(fields, name, cJSON_Duplicate(v, true));
}

static void add_fields(cJSON *fields, const cJSON *data, const char *const *names)
{
    for (; *names; names++)
        add_field(fields, *names, cJSON_GetObjectItemCaseSensitive(data, *names));
}

static bool write_expect_table(gen_t *g, emu_table_t t, FILE *f, size_t *deleted)
{
    static const char *const user_f[] = {"email",       "first_name", "last_name", "email_verified",
                                         "external_id", "locale",     NULL};
    static const char *const om_f[] = {"user_id", "organization_id", NULL};
    static const char *const om_f2[] = {"status", NULL};
    static const char *const inv_f[] = {"email", "state", "organization_id", NULL};
    static const char *const sess_f[] = {"user_id", "status", "auth_method", NULL};
    static const char *const key_f[] = {"name", "obfuscated_value", NULL};
    static const char *const org_f[] = {"name", "external_id", NULL};

    for (size_t k = 0; k < emu_state_count(g->state, t); k++) {
        const emu_obj_t *e = emu_state_at(g->state, t, k);
        cJSON *data = cJSON_Parse(e->payload);
        if (data == NULL)
            return false;
        cJSON *line = cJSON_CreateObject();
        cJSON *fields = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "table", emu_table_name(t));
        add_field(line, "id", cJSON_GetObjectItemCaseSensitive(data, "id"));
        add_field(line, "updated_at", cJSON_GetObjectItemCaseSensitive(data, "updated_at"));
        cJSON_AddBoolToObject(line, "deleted", e->deleted);
        *deleted += e->deleted;
        switch (t) {
        case EMU_TBL_USERS:
            add_fields(fields, data, user_f);
            break;
        case EMU_TBL_MEMBERSHIPS:
            add_fields(fields, data, om_f);
            add_field(fields, "role_slug",
                      cJSON_GetObjectItemCaseSensitive(
                          cJSON_GetObjectItemCaseSensitive(data, "role"), "slug"));
            add_fields(fields, data, om_f2);
            break;
        case EMU_TBL_INVITATIONS:
            add_fields(fields, data, inv_f);
            break;
        case EMU_TBL_SESSIONS:
            add_fields(fields, data, sess_f);
            break;
        case EMU_TBL_API_KEYS: {
            const cJSON *owner = cJSON_GetObjectItemCaseSensitive(data, "owner");
            add_field(fields, "owner_type", cJSON_GetObjectItemCaseSensitive(owner, "type"));
            add_field(fields, "owner_id", cJSON_GetObjectItemCaseSensitive(owner, "id"));
            add_fields(fields, data, key_f);
            break;
        }
        case EMU_TBL_ORGANIZATIONS:
            add_fields(fields, data, org_f);
            break;
        case EMU_TBL_COUNT:
            break;
        }
        cJSON_AddItemToObject(line, "fields", fields);
        char *s = cJSON_PrintUnformatted(line);
        if (s) {
            fputs(s, f);
            fputc('\n', f);
        }
        cJSON_free(s);
        cJSON_Delete(line);
        cJSON_Delete(data);
        if (s == NULL)
            return false;
    }
    return true;
}

/* ---- set-up and tear-down ---- */

static void base_free(base_t *b)
{
    free(b->snap);
    free(b->prev);
}

static void gen_free(gen_t *g)
{
    for (size_t i = 0; i < g->norgs; i++) {
        base_free(&g->orgs[i].b);
        free(g->orgs[i].name);
        free(g->orgs[i].external_id);
    }
    for (size_t i = 0; i < g->nusers; i++) {
        base_free(&g->users[i].b);
        free(g->users[i].email);
        free(g->users[i].external_id);
        free(g->users[i].oms);
    }
    for (size_t i = 0; i < g->noms; i++)
        base_free(&g->oms[i].b);
    for (size_t i = 0; i < g->ninvs; i++) {
        base_free(&g->invs[i].b);
        free(g->invs[i].email);
    }
    for (size_t i = 0; i < g->nsess; i++)
        base_free(&g->sess[i].b);
    for (size_t i = 0; i < g->nkeys; i++)
        base_free(&g->keys[i].b);
    free(g->orgs);
    free(g->users);
    free(g->oms);
    free(g->invs);
    free(g->sess);
    free(g->keys);
    emu_state_free(g->state);
    emu_buf_free(&g->ev);
    emu_buf_free(&g->data);
}

static void usage(void)
{
    fputs("usage: workos-emulator gen {--count N | --users N [--count N]} [--seed S]\n"
          "         [--out FILE] [--expect FILE] [--start 2026-01-01T00:00:00Z]\n",
          stderr);
}

static FILE *open_out(const char *path)
{
    if (path == NULL || strcmp(path, "-") == 0)
        return stdout;
    return fopen(path, "w");
}

int emu_gen_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"count", required_argument, NULL, 'n'},  {"users", required_argument, NULL, 'u'},
        {"seed", required_argument, NULL, 's'},   {"out", required_argument, NULL, 'o'},
        {"expect", required_argument, NULL, 'x'}, {"start", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *out_path = NULL, *expect_path = NULL, *start = "2026-01-01T00:00:00Z";
    uint64_t count = 0, seed = 1, users = 0;
    bool have_count = false, have_users = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!emu_parse_u64(optarg, MAX_COUNT, &count)) {
                fprintf(stderr, "workos-emulator: --count must be 0..%u\n", MAX_COUNT);
                return 64;
            }
            have_count = true;
            break;
        case 'u':
            if (!emu_parse_u64(optarg, 10000000, &users) || users == 0) {
                fprintf(stderr, "workos-emulator: --users must be 1..10000000\n");
                return 64;
            }
            have_users = true;
            break;
        case 's':
            if (!emu_parse_u64(optarg, UINT64_MAX, &seed)) {
                fprintf(stderr, "workos-emulator: --seed must be a non-negative integer\n");
                return 64;
            }
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'x':
            expect_path = optarg;
            break;
        case 't':
            start = optarg;
            break;
        case 'h':
            usage();
            return 0;
        default:
            usage();
            return 64;
        }
    }
    if ((!have_count && !have_users) || optind != argc) {
        usage();
        return 64;
    }

    gen_t *g = emu_xcalloc(1, sizeof(*g));
    g->state = emu_state_new();
    int rc = 1;
    FILE *xf = NULL;
    if (!emu_time_parse(start, strlen(start), &g->now)) {
        fprintf(stderr, "workos-emulator: --start %s: not an ISO 8601 time\n", start);
        rc = 64;
        goto out;
    }
    emu_rng_seed(&g->rng, seed);
    g->target = count;
    g->out = open_out(out_path);
    if (g->out == NULL) {
        fprintf(stderr, "workos-emulator: cannot write %s\n", out_path);
        goto out;
    }
    setvbuf(g->out, NULL, _IOFBF, 1 << 20);
    if (have_users) {
        populate(g, users);
        if (g->target < g->count)
            g->target = g->count;
    }

    uint32_t total = 0;
    while (g->count < g->target) {
        total = 0;
        for (int a = 0; a < ACT_COUNT; a++)
            total += weight(g, (action_t)a);
        uint32_t r = emu_rng_below(&g->rng, total);
        action_t a = ACT_ORG_CREATE;
        for (; a < ACT_COUNT; a++) {
            uint32_t w = weight(g, a);
            if (r < w)
                break;
            r -= w;
        }
        /* The first events found the world: an organization, then users. */
        if (g->live_orgs == 0)
            a = ACT_ORG_CREATE;
        else if (g->live_users < 2)
            a = ACT_USER_CREATE;
        g->ascii = emu_rng_below(&g->rng, 25) == 0;
        if (!step(g, a))
            auth_failure(g); /* always possible, and a single event */
    }

    size_t objects = 0, deleted = 0;
    for (int t = 0; t < EMU_TBL_COUNT; t++)
        objects += emu_state_count(g->state, (emu_table_t)t);
    if (expect_path) {
        xf = open_out(expect_path);
        if (xf == NULL) {
            fprintf(stderr, "workos-emulator: cannot write %s\n", expect_path);
            goto out;
        }
        for (int t = 0; t < EMU_TBL_COUNT; t++) {
            if (!write_expect_table(g, (emu_table_t)t, xf, &deleted)) {
                fprintf(stderr, "workos-emulator: internal error writing expectations\n");
                goto out;
            }
        }
    }
    if (fflush(g->out) != 0 || ferror(g->out) || (xf && (fflush(xf) != 0 || ferror(xf)))) {
        fprintf(stderr, "workos-emulator: write error\n");
        goto out;
    }
    fprintf(
        stderr,
        "events=%llu objects=%zu deleted=%zu organizations=%zu users=%zu "
        "organization_memberships=%zu invitations=%zu sessions=%zu api_keys=%zu\n",
        (unsigned long long)g->count, objects, deleted,
        emu_state_count(g->state, EMU_TBL_ORGANIZATIONS), emu_state_count(g->state, EMU_TBL_USERS),
        emu_state_count(g->state, EMU_TBL_MEMBERSHIPS),
        emu_state_count(g->state, EMU_TBL_INVITATIONS), emu_state_count(g->state, EMU_TBL_SESSIONS),
        emu_state_count(g->state, EMU_TBL_API_KEYS));
    rc = 0;
out:
    if (xf && xf != stdout)
        fclose(xf);
    if (g->out && g->out != stdout)
        fclose(g->out);
    gen_free(g);
    free(g);
    return rc;
}
