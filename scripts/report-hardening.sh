#!/usr/bin/env bash
# ./build.sh report-hardening: the bad-input catalogue of issue 24 against the release binary
# and its server (scripts/hardening_report.py), the property tests' case count
# (tests/parsers_fuzz.rs, the server's request-path property) and every page's requests under
# hostile URL parameters (tests/browser/foreign_requests.mjs) → reports/hardening.json + .md.
source "$(dirname "$0")/lib.sh"

setup; build_web
NATIVE_FEATURES=fixtures build_native
bin="$TARGET_DIR/release/ranklet"
mkdir -p reports "$CACHE"
log "property tests"
cargo test --release --locked --features fixtures --test parsers_fuzz -- --nocapture 2>&1 | tee "$CACHE/property.log"
cargo test --release --locked --features fixtures --bin ranklet no_request_path_escapes -- --nocapture 2>&1 | tee -a "$CACHE/property.log"
property=$(grep -o '^property [^:]*: [0-9]* cases' "$CACHE/property.log" | awk '{s += $(NF-1)} END {print s + 0}')
log "pages under hostile URL parameters"
foreign=$(RANKLET_BIN="$bin" node tests/browser/foreign_requests.mjs | tail -n1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["foreign_requests"])')
log "the bad-input catalogue"
python3 scripts/hardening_report.py "$bin" reports/hardening.json --property-cases "$property" --foreign-requests "$foreign"
python3 - <<'PY'
import json
r = json.load(open("reports/hardening.json"))
lines = ["# Hardening: bad input against the release binary, the server and the pages", "",
         f"Regenerate: `{r['command']}` ({r['machine']}).", "",
         f"- cases: {len(r['cases'])}; panics: {r['panics']}; unclear messages: {r['unclear_messages']}; "
         f"wrong results: {r['wrong_results']}; data lost: {r['data_lost']}",
         f"- server: files served outside the allow-list: {r['served_outside_allowlist']}",
         f"- pages under hostile URL parameters: requests off the origin: {r['foreign_requests']}",
         f"- property cases run (parsers and the request path): {r['property_cases']}", "",
         "| case | exit | clear message | panicked | data lost | wrong result |", "|---|---|---|---|---|---|"]
for c in r["cases"]:
    lines.append(f"| {c['name']} | {c['exit']} | {'yes' if c['clear_message'] else 'NO'} | {'YES' if c['panicked'] else 'no'} | "
                 f"{'YES' if c['data_lost'] else 'no'} | {'YES' if c['wrong_result'] else 'no'} |")
lines += ["", "| server request | status | served |", "|---|---|---|"]
for c in r["server_cases"]:
    lines.append(f"| {c['name']} | {c['status']} | {'YES' if c['served'] else 'no'}{' · ' + ', '.join(c['headers_present']) if 'headers_present' in c else ''} |")
open("reports/hardening.md", "w").write("\n".join(lines) + "\n")
PY
log "reports/hardening.json, reports/hardening.md"
