#!/usr/bin/env bash
# Ordering rules of the apply step, on a hand-written stream:
#   - an update older than the stored row never overwrites it (also when its
#     timestamp is written with another UTC offset, so it sorts differently
#     as text);
#   - an equal updated_at lets the later event of the stream win;
#   - a deleted object keeps a tombstone that no later event resurrects,
#     older or newer, including the delete that repeats the last updated_at;
#   - revocations update state; api_key.revoked tombstones the key;
# for users, memberships, organizations, invitations, sessions and API keys,
# with more events appended to the emulator while the daemon runs.
source "$(dirname "$0")/lib.sh"
require_bins

T1=2024-02-01T00:00:01.000Z
T2=2024-02-01T00:00:02.000Z
T2_OFFSET=2024-02-01T01:00:02.000+01:00 # = T2, but sorts after T3 as text
T3=2024-02-01T00:00:03.000Z
T3_SHORT=2024-02-01T00:00:03Z # = T3, written differently
T4=2024-02-01T00:00:04.000Z
T5=2024-02-01T00:00:05.000Z

EV_PREFIX=stale
user() { # id updated_at first_name
    printf '{"object":"user","id":"%s","email":"%s@example.test","first_name":"%s","last_name":"Test","email_verified":true,"profile_picture_url":null,"last_sign_in_at":null,"external_id":null,"metadata":{},"locale":null,"created_at":"%s","updated_at":"%s"}' \
        "$1" "$1" "$3" "$T1" "$2"
}
org() { # id updated_at name
    printf '{"object":"organization","id":"%s","name":"%s","external_id":null,"metadata":{},"allow_profiles_outside_organization":false,"domains":[],"created_at":"%s","updated_at":"%s"}' \
        "$1" "$3" "$T1" "$2"
}
membership() { # id updated_at role status
    printf '{"object":"organization_membership","id":"%s","user_id":"user_s1","organization_id":"org_s1","role":{"slug":"%s"},"status":"%s","directory_managed":false,"custom_attributes":{},"created_at":"%s","updated_at":"%s"}' \
        "$1" "$3" "$4" "$T1" "$2"
}
invitation() { # id updated_at state
    printf '{"object":"invitation","id":"%s","email":"invitee@example.test","state":"%s","accepted_at":null,"revoked_at":null,"expires_at":"2024-03-01T00:00:00.000Z","organization_id":"org_s1","inviter_user_id":null,"accepted_user_id":null,"token":"tok_never_stored_%s","accept_invitation_url":"https://example.test/accept?token=tok_never_stored_%s","created_at":"%s","updated_at":"%s"}' \
        "$1" "$3" "$EV_SEQ" "$EV_SEQ" "$T1" "$2"
}
session() { # id updated_at status
    printf '{"object":"session","id":"%s","user_id":"user_s1","organization_id":"org_s1","status":"%s","auth_method":"password","ip_address":"127.0.0.1","user_agent":"test","expires_at":"2024-04-01T00:00:00.000Z","ended_at":null,"created_at":"%s","updated_at":"%s"}' \
        "$1" "$3" "$T1" "$2"
}
api_key() { # id updated_at
    printf '{"object":"api_key","id":"%s","owner":{"type":"organization","id":"org_s1"},"name":"ci key","obfuscated_value":"sk_...abcd","permissions":[],"last_used_at":null,"created_at":"%s","updated_at":"%s"}' \
        "$1" "$T1" "$2"
}

A=$T/phase1.jsonl
B=$T/phase2.jsonl
{
    ev user.created "$(user user_s1 "$T1" A)"
    ev user.updated "$(user user_s1 "$T3" C)"
    ev user.updated "$(user user_s1 "$T2_OFFSET" B)"         # stale
    ev user.updated "$(user user_s1 "$T3_SHORT" C2)"         # tie: later wins
    ev user.created "$(user user_s2 "$T1" X)"
    ev user.deleted "$(user user_s2 "$T2" X)"
    ev user.updated "$(user user_s2 "$T1" Older)"            # older than delete
    ev user.updated "$(user user_s2 "$T4" Newer)"            # newer: still deleted
    ev user.created "$(user user_s3 "$T1" Y)"
    ev user.deleted "$(user user_s3 "$T1" Y)"                # delete repeats updated_at
    ev organization.created "$(org org_s1 "$T1" 'Org A')"
    ev organization.updated "$(org org_s1 "$T2" 'Org B')"
    ev organization.updated "$(org org_s1 "$T1" 'Org Old')"  # stale
    ev organization.created "$(org org_s2 "$T1" Gone)"
    ev organization.deleted "$(org org_s2 "$T1" Gone)"
    ev organization.updated "$(org org_s2 "$T2" Back)"       # no resurrection
    ev organization_membership.created "$(membership om_s1 "$T1" member active)"
    ev organization_membership.updated "$(membership om_s1 "$T3" admin active)"
    ev organization_membership.updated "$(membership om_s1 "$T2" viewer active)" # stale
    ev organization_membership.deleted "$(membership om_s1 "$T3" admin active)"  # repeats updated_at
    ev organization_membership.updated "$(membership om_s1 "$T2" viewer inactive)"
    ev organization_membership.created "$(membership om_s2 "$T1" member pending)"
    ev organization_membership.updated "$(membership om_s2 "$T2" member active)"
    ev organization_membership.updated "$(membership om_s2 "$T2" admin active)"  # tie
    ev invitation.created "$(invitation inv_s1 "$T1" pending)"
    ev invitation.revoked "$(invitation inv_s1 "$T3" revoked)"
    ev invitation.resent "$(invitation inv_s1 "$T2" pending)" # stale
    ev session.created "$(session session_s1 "$T1" active)"
    ev session.revoked "$(session session_s1 "$T2" revoked)"
    ev session.created "$(session session_s1 "$T1" active)"   # replayed, older
    ev api_key.created "$(api_key key_s1 "$T1")"
    ev api_key.revoked "$(api_key key_s1 "$T2")"
    ev api_key.created "$(api_key key_s1 "$T1")"              # older: stays revoked
} >"$A"
{
    ev user.updated "$(user user_s1 "$T2" Stale2)"           # stale, arrives late
    ev user.updated "$(user user_s1 "$T5" E)"
    ev user.created "$(user user_s2 "$T5" Resurrected)"      # tombstone is final
    ev organization_membership.updated "$(membership om_s1 "$T5" admin active)"
    ev user.updated "$(user user_s4 "$T1" Fresh)"            # first seen as an update
} >"$B"
cat "$A" "$B" >"$T/all.jsonl"

exp() { # table id updated_at deleted fields-json
    printf '{"table":"%s","id":"%s","updated_at":"%s","deleted":%s,"fields":%s}\n' "$@"
}
{
    exp users user_s1 "$T5" false '{"first_name":"E"}'
    exp users user_s2 "$T2" true '{"first_name":"X"}'
    exp users user_s3 "$T1" true '{"first_name":"Y"}'
    exp users user_s4 "$T1" false '{"first_name":"Fresh"}'
    exp organizations org_s1 "$T2" false '{"name":"Org B"}'
    exp organizations org_s2 "$T1" true '{"name":"Gone"}'
    exp organization_memberships om_s1 "$T3" true '{"role_slug":"admin","status":"active"}'
    exp organization_memberships om_s2 "$T2" false '{"role_slug":"admin","status":"active"}'
    exp invitations inv_s1 "$T3" false '{"state":"revoked"}'
    exp sessions session_s1 "$T2" false '{"status":"revoked"}'
    exp api_keys key_s1 "$T2" true '{"owner_type":"organization","owner_id":"org_s1"}'
} >"$T/expected.jsonl"

pg_start
EVENTS=$A
emu_start "$A"
daemon_config
daemon_start
wait_caught_up 60

# After phase 1: the tie went to the later event.
got=$(sql "select first_name || '|' || (updated_at = '$T3') || '|' || last_event_id
             from workos.users where id = 'user_s1'")
assert_eq "C2|true|evt_stale_004" "$got" "user_s1 after the equal-updated_at tie"
got=$(sql "select (deleted_at is not null) || '|' || first_name || '|' || last_event_id
             from workos.users where id = 'user_s2'")
assert_eq "true|X|evt_stale_006" "$got" "user_s2 after a delete and older/newer updates"
got=$(sql "select count(*) from workos.users where deleted_at is null")
assert_eq 1 "$got" "live users after phase 1"

# Phase 2 arrives while the daemon is running.
emu_append "$B"
log "appended $(wc -l <"$B") events to the running emulator"
wait_caught_up 60 --file "$T/all.jsonl"

assert_mirror_matches "$T/expected.jsonl"
assert_events_exact "$T/all.jsonl"
assert_events_content "$T/all.jsonl"
got=$(sql "select first_name || '|' || last_event_id from workos.users where id = 'user_s1'")
assert_eq "E|evt_stale_035" "$got" "user_s1 after the newer appended update"
got=$(sql "select count(*) from workos.events where data::text like '%tok_never_stored%'")
assert_eq 0 "$got" "stored invitation tokens"
daemon_stop
