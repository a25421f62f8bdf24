"""The store's Lua scripts: each change of a user's sessions is one atomic script.

Every script starts with the same head, which reads the arguments all
scripts share, ``ARGV[1]`` to ``ARGV[HEAD_ARGC]`` (see ``SessionStore._run``):

    NOW     the time, in ms since the epoch
    USER    the user id
    PREFIX  a session hash's key without the session id: the {userId} hash tag
            keeps ``PREFIX .. id`` in the slot of the user's index
    STREAM  the events stream's key; '' for none, and in a Cluster, where the
            stream lives in another slot and the store appends the event itself
    MAXLEN  the stream's approximate length cap
    IDLE    the idle timeout in ms (0 = none)
    HISTORY the user's history key (``keyspace``; same slot as the index); '' for none
    HISTORY_MS   how long an ended session is kept there, in ms
    HISTORY_MAX  how many ended sessions are kept there at most

A script's own arguments follow, from ``ARGV[HEAD_ARGC + 1]``. ``KEYS[1]`` is
always the user's index; the session hashes a script names come after it.
The hash's fields are listed in ``encoding``.

Every script that ends a session records it in the user's history (``record``)
before it deletes the hash, in the same script: an ended session is in the
history exactly when it is gone. A session whose key Redis expires runs no
code; the scripts record it as expired when they find its index entry, if the
index itself still lives (docs/history.md).
"""

from __future__ import annotations

HEAD_ARGC = 9  # the shared arguments above

_HEAD = f"""
local NOW, USER, PREFIX = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local STREAM, MAXLEN, IDLE = ARGV[4], ARGV[5], tonumber(ARGV[6])
local HISTORY, HISTORY_MS, HISTORY_MAX = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local HEAD = {HEAD_ARGC}  -- a script's own arguments are ARGV[HEAD + 1], ARGV[HEAD + 2], ...
-- `actor`: a support session's operator (field s), added as a field when known.
local function emit(kind, ids, expire_at, actor)
  if STREAM == '' or #ids == 0 then return end
  local list = table.concat(ids, ',')
  if actor then
    redis.call('XADD', STREAM, 'MAXLEN', '~', MAXLEN, '*', 'type', kind, 'userId', USER,
      'sessionIds', list, 'at', NOW, 'expireAt', expire_at or '', 'actor', actor)
  else
    redis.call('XADD', STREAM, 'MAXLEN', '~', MAXLEN, '*', 'type', kind, 'userId', USER,
      'sessionIds', list, 'at', NOW, 'expireAt', expire_at or '')
  end
end
-- When the session was last active: field a, absent until the first touch
-- (the session was last active when created, field c).
local function last_active(created, active)
  return tonumber(active or created)
end
-- A session's idle timeout in ms: its own (field z, seconds: `own`) when it has
-- one (remember-me, docs/sessions-lifetime.md), else IDLE; 0 = none.
local function idle_limit(own)
  return own and tonumber(own) * 1000 or IDLE
end
-- Idle since `last`, by that timeout?
local function idle(last, own)
  local limit = idle_limit(own)
  return limit > 0 and NOW - last > limit
end
-- How often to note a session's use: every tenth of its own timeout, if shorter.
local function touch_every(touch, own)
  touch = tonumber(touch)
  if own then return math.min(touch, tonumber(own) * 100) end
  return touch
end
-- The hash fields a history entry keeps of a session (encoding): times, the
-- description, the known device's id.
local KEPT = {{'c', 'a', 'x', 'b', 'v', 'p', 'o', 'l', 'i', 'd', 'I'}}
-- Record that a session (its hash key and id) ended, why ('reason', a
-- domain.history.EndReason), by whom ('by': 'u', 's' or 'a:<key name>') and
-- when (ms; NOW by default): one compact JSON entry at the head of the user's
-- history, a list newest first, capped at HISTORY_MAX, entries older than
-- HISTORY_MS dropped from its tail, the key living HISTORY_MS after its last
-- entry. Call it before the hash is deleted: it keeps what the hash held.
local function record(key, id, reason, by, ended)
  if HISTORY == '' then return end
  local entry = {{id = id, why = reason, by = by, ['end'] = ended or NOW}}
  local seen = redis.call('HMGET', key, unpack(KEPT))
  for n, name in ipairs(KEPT) do
    if seen[n] then entry[name] = seen[n] end
  end
  redis.call('LPUSH', HISTORY, cjson.encode(entry))
  redis.call('LTRIM', HISTORY, 0, HISTORY_MAX - 1)
  local cutoff = NOW - HISTORY_MS
  for _ = 1, HISTORY_MAX do
    local oldest = redis.call('LINDEX', HISTORY, -1)
    if not oldest or cjson.decode(oldest)['end'] > cutoff then break end
    redis.call('RPOP', HISTORY)
  end
  redis.call('PEXPIRE', HISTORY, HISTORY_MS)
end
-- Remove the index entries of sessions past their expireAt, recording each as
-- expired (at its expireAt, by the service): Redis expired the hash and ran no
-- code, so this is where the service learns of it.
local function prune_expired()
  local gone = redis.call('ZRANGE', KEYS[1], '-inf', NOW, 'BYSCORE', 'WITHSCORES')
  for n = 1, #gone, 2 do
    record(PREFIX .. gone[n], gone[n], 'expired', 's', tonumber(gone[n + 1]))
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', NOW) end
end
-- Delete a session: its hash and its index entry.
local function drop(key, id)
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], id)
end
-- Is the session (its hash key and id) live for a token expiring at `token_end`
-- (ms; 0: no token)? An idle one is deleted; activity is noted at most every
-- `touch` ms. HSET runs only after HMGET found the hash, so a dead session is
-- never re-created as a key without a TTL. A token outliving its session was
-- never issued here (tokens end with their session at the latest): refused.
-- Returns false, or what the same HMGET read: {{c, a, k, z, e, m, w, s}} (nil where
-- absent): the claims, and how the user signed in, for verify's requirements.
local function live(key, id, touch, token_end)
  local seen = redis.call('HMGET', key, 'c', 'a', 'k', 'z', 'e', 'm', 'w', 's')
  if not seen[1] then return false end
  if tonumber(token_end) > redis.call('PEXPIRETIME', key) then return false end
  local last = last_active(seen[1], seen[2])
  if idle(last, seen[4]) then
    record(key, id, 'idle', 's', last + idle_limit(seen[4]))
    drop(key, id)
    return false
  end
  if NOW - last >= touch_every(touch, seen[4]) then redis.call('HSET', key, 'a', NOW) end
  return seen
end
"""

# create. KEYS: the index, the new session's hash. ARGV: session id, expire_at,
# max sessions (0 = no cap), then the hash's field/value pairs.
# Returns the ids evicted by the cap.
CREATE = """
local id, expire_at, cap = ARGV[HEAD + 1], ARGV[HEAD + 2], tonumber(ARGV[HEAD + 3])
prune_expired()
redis.call('HSET', KEYS[2], unpack(ARGV, HEAD + 4))
redis.call('PEXPIREAT', KEYS[2], expire_at)
redis.call('ZADD', KEYS[1], expire_at, id)
emit('session.created', {id}, expire_at, redis.call('HGET', KEYS[2], 's') or nil)
local evicted = {}
local excess = redis.call('ZCARD', KEYS[1]) - cap
if cap > 0 and excess > 0 then
  -- The oldest first, never the session just made: one made in the same
  -- millisecond as an older one has the same score and may sort before it.
  for _, old in ipairs(redis.call('ZRANGE', KEYS[1], 0, excess)) do
    if old ~= id and #evicted < excess then evicted[#evicted + 1] = old end
  end
  for _, old in ipairs(evicted) do
    record(PREFIX .. old, old, 'evicted_by_cap', 's')
    redis.call('DEL', PREFIX .. old)
  end
  redis.call('ZREM', KEYS[1], unpack(evicted))
  emit('session.evicted', evicted)
end
-- The index lives exactly as long as the user's last session.
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return evicted
"""

# check. KEYS: the index, the session's hash. ARGV: session id, touch interval,
# the token's end (ms, 0 = none). Returns the live session's {claims, created
# at, acr, amr, auth time, actor} ('' where absent); nil when it is not live.
CHECK = """
local seen = live(KEYS[2], ARGV[HEAD + 1], ARGV[HEAD + 2], ARGV[HEAD + 3])
if not seen then return false end
return {seen[3] or '', seen[1], seen[5] or '', seen[6] or '', seen[7] or '', seen[8] or ''}
"""

# rotate. KEYS: the index, the session's hash. ARGV: session id, the presented
# refresh secret's digest, its successor's digest, grace (ms), issued ('1' when
# the token is provably the service's: only then is a mismatch theft), the
# presented secret's SHA-1 (for a session stored by 0.1.0, which holds its
# secrets themselves in r and q). No secret comes here, only digests: a
# MONITOR or a replica's stream shows none. Returns {outcome, the secret from
# now on (a 0.1.0 session's, on its grace; else false: it is the successor),
# expire_at, claims, n (persistent or not), s (the support operator), created
# at, acr, amr, auth time}; outcomes as in domain.sessions.Rotation. expire_at
# never moves: a refresh never lengthens a session (a support session's cap
# holds).
ROTATE = """
local id, presented, successor = ARGV[HEAD + 1], ARGV[HEAD + 2], ARGV[HEAD + 3]
local grace, issued, legacy = tonumber(ARGV[HEAD + 4]), ARGV[HEAD + 5], ARGV[HEAD + 6]
local cur = redis.call('HMGET', KEYS[2], 'h', 'g', 't', 'c', 'a', 'k', 'r', 'q', 'z', 'n', 's',
  'e', 'm', 'w')
-- How the user signed in, for the new access token: created at, acr, amr, auth time.
local function assurance()
  return cur[4], cur[12] or '', cur[13] or '', cur[14] or ''
end
if not cur[4] then return {0, false, false} end
local last = last_active(cur[4], cur[5])
if idle(last, cur[9]) then
  record(KEYS[2], id, 'idle', 's', last + idle_limit(cur[9]))
  drop(KEYS[2], id)
  return {0, false, false}
end
-- Plain comparisons of digests: a digest's prefix matching tells nothing of
-- the secret (SHA-256 of 128 random bits), so timing here leaks nothing.
-- A 0.1.0 session's secrets are compared by their SHA-1, as 0.1.0 did.
local held, previous = cur[1] == presented, cur[2] == presented
if cur[7] then
  held, previous = redis.sha1hex(cur[7]) == legacy, cur[8] and redis.sha1hex(cur[8]) == legacy
end
local expire_at = redis.call('PEXPIRETIME', KEYS[2])
if held then
  -- h and g replace a 0.1.0 session's r and q: from now on it keeps digests only.
  redis.call('HDEL', KEYS[2], 'r', 'q')
  redis.call('HSET', KEYS[2], 'h', successor, 'g', presented, 't', NOW, 'a', NOW)
  emit('session.refreshed', {id}, expire_at, cur[11])
  return {1, false, expire_at, cur[6] or '', cur[10] or '', cur[11] or '', assurance()}
end
-- The previous secret within the grace gets the successor it got before:
-- derived again from it, it must be the one the session holds (a new
-- SERVICE_KEY derives another: refused, as a guess).
if previous and NOW - tonumber(cur[3]) < grace then
  if not (cur[7] or cur[1] == successor) then return {-2, false, false} end
  redis.call('HSET', KEYS[2], 'a', NOW)
  emit('session.refreshed', {id}, expire_at, cur[11])
  return {2, cur[7] or false, expire_at, cur[6] or '', cur[10] or '', cur[11] or '', assurance()}
end
-- A guess at a session's secret is refused, and ends nothing.
if issued ~= '1' then return {-2, false, false} end
record(KEYS[2], id, 'refresh_token_reused', 's')
drop(KEYS[2], id)
emit('session.theft_detected', {id}, expire_at, cur[11])
return {-1, false, expire_at, '', '', cur[11] or ''}
"""

# list. KEYS: the index, the asking session's hash (none when no session asks).
# ARGV: the asking session's id ('' = none), touch interval, its token's end (ms).
# Returns id, expire_at, fields, id, expire_at, fields, ... of the live sessions
# and prunes the rest; nil when the asking session is not live.
LIST = """
local caller, touch, token_end = ARGV[HEAD + 1], ARGV[HEAD + 2], ARGV[HEAD + 3]
if caller ~= '' and not live(KEYS[2], caller, touch, token_end) then return false end
-- A field of an HGETALL reply (name, value, name, value, ...).
local function field(flat, name)
  for f = 1, #flat, 2 do
    if flat[f] == name then return flat[f + 1] end
  end
end
prune_expired()
local out = {}
local index = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #index, 2 do
  local id = index[i]
  local fields = redis.call('HGETALL', PREFIX .. id)
  if #fields == 0 then
    redis.call('ZREM', KEYS[1], id)
  elseif idle(last_active(field(fields, 'c'), field(fields, 'a')), field(fields, 'z')) then
    local last = last_active(field(fields, 'c'), field(fields, 'a'))
    record(PREFIX .. id, id, 'idle', 's', last + idle_limit(field(fields, 'z')))
    drop(PREFIX .. id, id)
  else
    out[#out + 1] = id
    out[#out + 1] = index[i + 1]
    out[#out + 1] = fields
  end
end
return out
"""

# revoke. KEYS: the index, the session's hash, the asking session's hash (none
# when no session asks). ARGV: session id, the asking session's id ('' = none),
# touch interval, its token's end (ms), why and by whom (as ``record`` keeps
# them). Returns {1 when it existed, 0 when not, -1 when the asking session is
# not live (nothing revoked); a support session's operator ('' for none)}.
REVOKE = """
local id, caller, touch = ARGV[HEAD + 1], ARGV[HEAD + 2], ARGV[HEAD + 3]
if caller ~= '' and not live(KEYS[3], caller, touch, ARGV[HEAD + 4]) then return {-1, ''} end
local actor = redis.call('HGET', KEYS[2], 's') or nil  -- a support session's operator
if redis.call('EXISTS', KEYS[2]) == 1 then record(KEYS[2], id, ARGV[HEAD + 5], ARGV[HEAD + 6]) end
local existed = redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], id)
if existed == 1 then emit('session.revoked', {id}, nil, actor) end
return {existed, actor or ''}
"""

# revoke_all. KEYS: the index. ARGV: the session id to keep ('' = none), why
# and by whom (as ``record`` keeps them).
# Returns the revoked ids. One script, so a login racing with it either lands
# before (and is revoked) or after (and is indexed): never a live session
# missing from the index.
REVOKE_ALL = """
local keep, reason, by = ARGV[HEAD + 1], ARGV[HEAD + 2], ARGV[HEAD + 3]
local revoked = {}
prune_expired()  -- so those are recorded as expired, not as revoked now
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= keep then
    if redis.call('EXISTS', PREFIX .. id) == 1 then record(PREFIX .. id, id, reason, by) end
    if redis.call('DEL', PREFIX .. id) == 1 then revoked[#revoked + 1] = id end
    redis.call('ZREM', KEYS[1], id)
  end
end
emit('sessions.revoked_all', revoked)
return revoked
"""

# set_claims. KEYS: the index, the session's hash (none for all of the user's
# sessions). ARGV: session id ('' = every session of the user), the claims as
# JSON ('' = none). Returns the ids of the live sessions changed.
SET_CLAIMS = """
local id, claims = ARGV[HEAD + 1], ARGV[HEAD + 2]
local ids = id ~= '' and {id} or redis.call('ZRANGE', KEYS[1], 0, -1)
local changed = {}
for _, each in ipairs(ids) do
  local key = PREFIX .. each
  if redis.call('EXISTS', key) == 1 then
    if claims == '' then redis.call('HDEL', key, 'k') else redis.call('HSET', key, 'k', claims) end
    changed[#changed + 1] = each
  end
end
emit('session.claims_changed', changed)
return changed
"""

# step_up. KEYS: the index, the session's hash. ARGV: session id, the new acr,
# amr (comma-joined), auth time (ms), ACR_LEVELS (comma-joined, weakest first).
# A level is only raised (domain.assurance.step_up_refusal says the same in
# words): the same acr, or a higher one in ACR_LEVELS; an auth time never goes
# back. The event carries the new acr, and a support session's operator
# (field s) as its actor: the step-up is the operator's. Returns {1,
# expire_at, claims, created at, actor}; {0} when the session is not live,
# {-1, acr held} for a lower or incomparable level, {-2, auth time held}.
STEP_UP = """
local id, acr, amr, auth_time = ARGV[HEAD + 1], ARGV[HEAD + 2], ARGV[HEAD + 3], ARGV[HEAD + 4]
local levels = ARGV[HEAD + 5]
local cur = redis.call('HMGET', KEYS[2], 'c', 'a', 'k', 'e', 'w', 's', 'z')
if not cur[1] then return {0} end
local last = last_active(cur[1], cur[2])
if idle(last, cur[7]) then
  record(KEYS[2], id, 'idle', 's', last + idle_limit(cur[7]))
  drop(KEYS[2], id)
  return {0}
end
local function rank(name)
  local place = 0
  for level in string.gmatch(levels, '[^,]+') do
    if level == name then return place end
    place = place + 1
  end
  return nil
end
local held = cur[4] or ''
if held ~= '' and held ~= acr then
  local old, new = rank(held), rank(acr)
  if old == nil or new == nil or new < old then return {-1, held} end
end
local since = tonumber(cur[5] or cur[1])
if tonumber(auth_time) < since then return {-2, tostring(since)} end
redis.call('HSET', KEYS[2], 'e', acr, 'm', amr, 'a', NOW)
if tonumber(auth_time) == tonumber(cur[1]) then
  redis.call('HDEL', KEYS[2], 'w')
else
  redis.call('HSET', KEYS[2], 'w', auth_time)
end
local expire_at = redis.call('PEXPIRETIME', KEYS[2])
if STREAM ~= '' then
  local entry = {'type', 'session.stepped_up', 'userId', USER, 'sessionIds', id, 'at', NOW,
    'expireAt', expire_at, 'acr', acr}
  if cur[6] then
    entry[#entry + 1] = 'actor'
    entry[#entry + 1] = cur[6]
  end
  redis.call('XADD', STREAM, 'MAXLEN', '~', MAXLEN, '*', unpack(entry))
end
return {1, expire_at, cur[3] or '', cur[1], cur[6] or ''}
"""

# --- Devices (issue 19) -------------------------------------------------------------------------
# A user's devices are one hash (keyspace DEVICES_KEY): a field per device id
# holding its record as JSON {n: default name, u: the user's own name, f: first
# seen, l: last seen (ms), p: last location, t: 1 when trusted}, and fields
# starting with "~" (never a device id): ~l the previous login {at, c: country,
# la, lo: coordinates}, ~c the countries seen (a JSON list), ~r the last "not
# me" report. The sessions on a device are those whose hash holds its id in I.
_DEVICES = """
local function device_ids(dv)
  local ids = {}
  for _, f in ipairs(redis.call('HKEYS', dv)) do
    if string.sub(f, 1, 1) ~= '~' then ids[#ids + 1] = f end
  end
  return ids
end
-- The device ids live sessions are on (the index's members' field I).
local function in_use()
  local used = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], NOW, '+inf')) do
    local device = redis.call('HGET', PREFIX .. id, 'I')
    if device then used[device] = true end
  end
  return used
end
"""

# device_login. KEYS: the index, the devices. ARGV: the device id presented
# ('' = none), the id a new device gets, its default name, the location,
# country, latitude, longitude ('' = unknown), the cap, the retention (ms).
# Returns {known (1/0), the device id, the previous login (JSON) or false, the
# countries seen (JSON) or false, whether the user had any device (1/0)}.
DEVICE_LOGIN = (
    _DEVICES
    + """
local presented, fresh, name = ARGV[HEAD + 1], ARGV[HEAD + 2], ARGV[HEAD + 3]
local place, country, lat, lon = ARGV[HEAD + 4], ARGV[HEAD + 5], ARGV[HEAD + 6], ARGV[HEAD + 7]
local cap, retention = tonumber(ARGV[HEAD + 8]), ARGV[HEAD + 9]
local dv = KEYS[2]
local had_any = redis.call('EXISTS', dv)
local previous = redis.call('HGET', dv, '~l')
local countries = redis.call('HGET', dv, '~c')
local raw = presented ~= '' and redis.call('HGET', dv, presented)
local id, record, known = fresh, {n = name, u = '', f = NOW, t = 0}, 0
if raw then
  id, record, known = presented, cjson.decode(raw), 1
  record.n = name  -- the browser may have moved on (a new version, a new OS)
end
record.l, record.p = NOW, place
redis.call('HSET', dv, id, cjson.encode(record))
local seen = countries and cjson.decode(countries) or {}
if country ~= '' then
  local found = false
  for _, c in ipairs(seen) do if c == country then found = true end end
  if not found then
    seen[#seen + 1] = country
    while #seen > 64 do table.remove(seen, 1) end
    redis.call('HSET', dv, '~c', cjson.encode(seen))
  end
end
redis.call('HSET', dv, '~l', cjson.encode({at = NOW, c = country, la = lat, lo = lon}))
-- Bounded: past the cap, the devices last seen longest ago, unused ones first.
local ids = device_ids(dv)
if cap > 0 and #ids > cap then
  local used = in_use()
  local records = {}
  for _, d in ipairs(ids) do
    if d ~= id then
      local r = cjson.decode(redis.call('HGET', dv, d))
      records[#records + 1] = {d, used[d] and 1 or 0, tonumber(r.l) or 0}
    end
  end
  table.sort(records, function(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[3] < b[3]
  end)
  for i = 1, #ids - cap do redis.call('HDEL', dv, records[i][1]) end
end
redis.call('PEXPIRE', dv, retention)
return {known, id, previous or false, countries or false, had_any}
"""
)

# devices. KEYS: the index, the devices. Returns {the devices' fields and
# records (HGETALL), {session id, device id, ...} of the live sessions}.
DEVICES = (
    _DEVICES
    + """
local sessions = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], NOW, '+inf')) do
  local device = redis.call('HGET', PREFIX .. id, 'I')
  if device then
    sessions[#sessions + 1] = id
    sessions[#sessions + 1] = device
  end
end
return {redis.call('HGETALL', KEYS[2]), sessions}
"""
)

# rename_device. KEYS: the index, the devices. ARGV: device id, the user's
# name for it. Returns the record (JSON) renamed; false for no such device.
RENAME_DEVICE = """
local raw = redis.call('HGET', KEYS[2], ARGV[HEAD + 1])
if not raw then return false end
local record = cjson.decode(raw)
record.u = ARGV[HEAD + 2]
raw = cjson.encode(record)
redis.call('HSET', KEYS[2], ARGV[HEAD + 1], raw)
return raw
"""

# forget_device. KEYS: the index, the devices. ARGV: device id, why and by whom
# its sessions end (as ``record`` keeps them: revoked_by_user and 'u' for the
# user, revoked_by_admin and 'a:<key name>' for support staff). Forgets it and
# signs out its sessions, recording each in the history. Returns {1 when it
# was known, else 0, the revoked session ids, {id, operator, ...} of those
# that were support sessions (their session.revoked events carry the actor)}.
FORGET_DEVICE = """
local device, reason, by = ARGV[HEAD + 1], ARGV[HEAD + 2], ARGV[HEAD + 3]
local existed = redis.call('HDEL', KEYS[2], device)
prune_expired()  -- so those are recorded as expired, not as signed out now
local revoked, plain, supported = {}, {}, {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = PREFIX .. id
  local seen = redis.call('HMGET', key, 'I', 's')
  if seen[1] == device then
    record(key, id, reason, by)
    drop(key, id)
    revoked[#revoked + 1] = id
    if seen[2] then
      emit('session.revoked', {id}, nil, seen[2])  -- one event per operator, as REVOKE
      supported[#supported + 1] = id
      supported[#supported + 1] = seen[2]
    else
      plain[#plain + 1] = id
    end
  end
end
emit('session.revoked', plain)
return {existed, revoked, supported}
"""

# answer. KEYS: the index, the devices, the pair's answer key. ARGV: device id,
# answer ('me' / 'not_me'), the key's life (ms), session id. Uses the pair up
# (a second answer: -1, nothing changed); 'me' marks the device known and
# trusted, 'not_me' untrusts it and records the report (the web layer then
# signs the session out). Returns 1.
ANSWER = """
local device, answer, life, session = ARGV[HEAD + 1], ARGV[HEAD + 2], ARGV[HEAD + 3], ARGV[HEAD + 4]
if redis.call('SET', KEYS[3], answer, 'NX', 'PX', life) == false then return -1 end
local raw = redis.call('HGET', KEYS[2], device)
local record = raw and cjson.decode(raw) or {n = '', u = '', f = NOW, l = NOW, p = ''}
if answer == 'me' then
  record.t = 1
else
  record.t = 0
  redis.call('HSET', KEYS[2], '~r', cjson.encode({at = NOW, s = session, d = device}))
end
if raw or answer == 'me' then redis.call('HSET', KEYS[2], device, cjson.encode(record)) end
return 1
"""

# unanswer. KEYS: the index, the pair's answer key. Gives the pair back when
# acting on its answer failed. Returns 1 when it was used.
UNANSWER = """
return redis.call('DEL', KEYS[2])
"""

# answer_context. KEYS: the index, the session's hash, the devices, the pair's
# answer key. ARGV: device id. Returns {the session's fields (HGETALL), its
# expiry, the device's record or false, the answer given or false}.
ANSWER_CONTEXT = """
return {redis.call('HGETALL', KEYS[2]), redis.call('PEXPIRETIME', KEYS[2]),
  redis.call('HGET', KEYS[3], ARGV[HEAD + 1]), redis.call('GET', KEYS[4])}
"""

# Each script's whole source, by the name SessionStore runs it by.
SCRIPTS = {
    name: _HEAD + body
    for name, body in {
        "create": CREATE,
        "check": CHECK,
        "rotate": ROTATE,
        "list": LIST,
        "revoke": REVOKE,
        "revoke_all": REVOKE_ALL,
        "set_claims": SET_CLAIMS,
        "step_up": STEP_UP,
        "device_login": DEVICE_LOGIN,
        "devices": DEVICES,
        "rename_device": RENAME_DEVICE,
        "forget_device": FORGET_DEVICE,
        "answer": ANSWER,
        "unanswer": UNANSWER,
        "answer_context": ANSWER_CONTEXT,
    }.items()
}
