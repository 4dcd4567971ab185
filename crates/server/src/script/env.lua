-- The environment kvs gives a script, built once per Lua state. It runs with the real globals
-- table; scripts run with `env`, a read-only view of it. Rust passes in the hidden table `K`,
-- where it puts, for the length of one script, the function that runs a command (`K[CALL]`).
-- The slots read at every call have integer keys: they cost Rust no string to look up.
local K = ...
local CALL, RESP, ACL_MARKER = 1, 2, 3
K[ACL_MARKER] = {}
local G = _G
local lua_error, lua_pcall, lua_xpcall = error, pcall, xpcall
local lua_type, lua_rawget, lua_rawset, lua_tostring = type, rawget, rawset, tostring
local lua_setmetatable, lua_getfenv, lua_setfenv = setmetatable, getfenv, setfenv
local lua_loadstring, lua_select = loadstring, select

local protected = lua_setmetatable({}, { __mode = 'k' })

local function readonly()
  lua_error('Attempt to modify a readonly table', 2)
end

-- A read-only view of `t`: reads go through, writes raise Redis's error.
local sealed = lua_setmetatable({}, { __newindex = readonly, __metatable = false })
protected[sealed] = true
local function protect(t)
  local view = lua_setmetatable({}, { __index = t, __newindex = readonly, __metatable = sealed })
  protected[view] = true
  return view
end

-- An error table as Redis makes them: `{err = 'CODE message'}`.
local function err_table(text)
  return { err = text }
end

local redis = {}
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REDIS_VERSION = K.version
redis.REDIS_VERSION_NUM = K.version_num

-- Runs a command; raises its error as a table. A function of Rust's (K.call_raise), so that a
-- script's `return redis.call(...)` is no tail call and its line is known.
redis.call = K.call_raise

-- Runs a command; returns its error as a table.
redis.pcall = K.call_protected

redis.acl_check_cmd = function(...)
  local call = K[CALL]
  if call == nil then
    lua_error(err_table('ERR redis.acl_check_cmd can only be called inside a script invocation'))
  end
  local ok, answer = call(K[ACL_MARKER], {...})
  if not ok then lua_error(answer) end
  return answer
end

redis.error_reply = function(...)
  local text = ...
  if lua_select('#', ...) ~= 1 or lua_type(text) ~= 'string' then
    return err_table('ERR wrong number or type of arguments')
  end
  if text:sub(1, 1) ~= '-' then text = '-' .. text end
  local code, rest = text:match('^%-(%S+) (.*)$')
  if code == nil then
    code, rest = 'ERR', text:sub(2)
  end
  rest = rest:gsub('[\r\n]+$', '')
  return err_table(code .. ' ' .. rest)
end

redis.status_reply = function(...)
  local text = ...
  if lua_select('#', ...) ~= 1 or lua_type(text) ~= 'string' then
    return err_table('ERR wrong number or type of arguments')
  end
  return { ok = text }
end

redis.sha1hex = function(...)
  if lua_select('#', ...) ~= 1 then
    lua_error(err_table('ERR wrong number of arguments'))
  end
  return K.sha1hex(lua_tostring((...)) or '')
end

redis.log = function(...)
  local n = lua_select('#', ...)
  if n < 2 then lua_error(err_table('ERR redis.log() requires two arguments or more.')) end
  local level = ...
  if lua_type(level) ~= 'number' then
    lua_error(err_table('ERR First argument must be a number (log level).'))
  end
  if level < 0 or level > 3 then lua_error(err_table('ERR Invalid debug level.')) end
  local parts = {}
  for i = 2, n do
    local v = lua_select(i, ...)
    if lua_type(v) == 'string' or lua_type(v) == 'number' then parts[#parts + 1] = lua_tostring(v) end
  end
  K.log(level, table.concat(parts, ' '))
end

redis.setresp = function(...)
  if lua_select('#', ...) ~= 1 then
    lua_error(err_table('ERR redis.setresp() requires one argument.'))
  end
  local version = ...
  if version ~= 2 and version ~= 3 then
    lua_error(err_table('ERR RESP version must be 2 or 3.'))
  end
  if K[CALL] == nil then
    lua_error(err_table('ERR redis.setresp can only be called inside a script invocation'))
  end
  K[RESP] = version
end

redis.set_repl = function(...)
  if lua_select('#', ...) ~= 1 then
    lua_error(err_table('ERR redis.set_repl() requires two arguments.'))
  end
  local flags = ...
  if lua_type(flags) ~= 'number' or flags < 0 or flags > 3 then
    lua_error(err_table('ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.'))
  end
  if K[CALL] == nil then
    lua_error(err_table('ERR redis.set_repl can only be called inside a script invocation'))
  end
end

-- Effects are always what is logged and replicated in kvs, as in Redis 7.
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end

G.redis = redis

-- pcall as Redis gives it to scripts: an error table caught is given as its text.
local function caught(ok, ...)
  if not ok and K.killed then
    -- SCRIPT KILL: no pcall in the script holds the error back.
    lua_error(K.raised or err_table('ERR Script killed by user with SCRIPT KILL...'))
  end
  if not ok then
    local e = ...
    if K.raised ~= nil then
      e = K.raised
      K.raised = nil
    end
    if lua_type(e) == 'table' and lua_type(lua_rawget(e, 'err')) == 'string' then
      return false, lua_rawget(e, 'err')
    end
  end
  return ok, ...
end
G.pcall = function(...) return caught(lua_pcall(...)) end
G.xpcall = function(f, h)
  local function again(ok, ...)
    if not ok and K.killed then
      lua_error(K.raised or err_table('ERR Script killed by user with SCRIPT KILL...'))
    end
    return ok, ...
  end
  return again(lua_xpcall(f, h))
end

G.rawset = function(t, k, v)
  if protected[t] then lua_error('Attempt to modify a readonly table', 2) end
  return lua_rawset(t, k, v)
end
G.setmetatable = function(t, mt)
  if protected[t] then lua_error('Attempt to modify a readonly table', 2) end
  return lua_setmetatable(t, mt)
end

-- Text chunks only, running in the script's environment.
local env
G.loadstring = function(text, name)
  if lua_type(text) == 'string' and text:byte(1) == 27 then
    return nil, 'binary chunks are not allowed'
  end
  local f, e = lua_loadstring(text, name)
  if f then lua_setfenv(f, env) end
  return f, e
end
G.load = nil
G.getfenv = function(f)
  if f == nil then f = 1 end
  if lua_type(f) == 'number' and f > 0 then f = f + 1 end
  local e = lua_getfenv(f)
  if e == G then return env end
  return e
end

-- What scripts may not reach.
G.print, G.dofile, G.loadfile, G.module, G.require = nil, nil, nil, nil, nil
G.os, G.io, G.package, G.debug = nil, nil, nil, nil

-- The scripts' view of the globals: libraries read-only, unknown names an error.
local libraries = {}
for _, name in ipairs({ 'string', 'math', 'table', 'coroutine', 'redis', 'cjson', 'bit', 'struct', 'cmsgpack' }) do
  if lua_type(G[name]) == 'table' then libraries[name] = protect(G[name]) end
end
local function lookup(name)
  local lib = libraries[name]
  if lib ~= nil then return lib end
  return G[name]
end
-- A read-only view whose reads go through `find`: a name it does not know raises Redis's error,
-- at the line of the script that read it.
local function strict(find)
  local view = lua_setmetatable({}, {
    __index = function(_, name)
      local v = find(name)
      if v == nil then
        lua_error("Script attempted to access nonexistent global variable '" .. lua_tostring(name) .. "'", 2)
      end
      return v
    end,
    __newindex = readonly,
    __metatable = sealed,
  })
  protected[view] = true
  return view
end
env = strict(lookup)
libraries._G = env

-- Finds the line of the script an error was raised on, and makes the error a table.
local function handler(e)
  local line = K.line()
  if K.raised ~= nil then
    e = K.raised
    K.raised = nil
  end
  if lua_type(e) ~= 'table' then
    e = { err = 'ERR ' .. lua_tostring(e) }
  elseif protected[e] then
    e = { err = lua_rawget(e, 'err') }
  end
  -- An error a command gave was counted when it happened (INFO errorstats): the mark stays.
  return {
    err = lua_rawget(e, 'err'),
    line = line,
    ignore_error_stats_update = lua_rawget(e, 'ignore_error_stats_update'),
  }
end

-- Runs a compiled script: true and its result, or false and an error table.
K.run = function(f, keys, args)
  lua_rawset(G, 'KEYS', keys)
  lua_rawset(G, 'ARGV', args)
  K[RESP] = 2
  K.raised = nil
  K.killed = nil
  return lua_xpcall(f, handler)
end
K.env = env

-- Functions (FUNCTION LOAD, FCALL) live in a Lua state of their own, made with K.functions set.
-- A library's code runs once when it loads, seeing only a `redis` that can register functions;
-- the functions it registers run later with the globals scripts see (but no KEYS or ARGV: they
-- get their keys and arguments as parameters).
if K.functions then
  local lua_pairs, lua_lower = pairs, string.lower
  local function fail(text) lua_error(err_table('ERR ' .. text)) end
  -- Strings, and numbers as strings (what Lua's C API takes for a string).
  local function text(v)
    local t = lua_type(v)
    if t == 'string' then return v end
    if t == 'number' then return lua_tostring(v) end
    return nil
  end
  local loading = {
    log = redis.log,
    LOG_DEBUG = redis.LOG_DEBUG,
    LOG_VERBOSE = redis.LOG_VERBOSE,
    LOG_NOTICE = redis.LOG_NOTICE,
    LOG_WARNING = redis.LOG_WARNING,
    REDIS_VERSION = redis.REDIS_VERSION,
    REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
  }
  loading.register_function = function(...)
    local registered = K.registered
    if registered == nil then
      fail('redis.register_function can only be called on FUNCTION LOAD command')
    end
    local n = lua_select('#', ...)
    if n < 1 or n > 2 then fail('wrong number of arguments to redis.register_function') end
    local name, callback, description
    local flags = {}
    if n == 2 then
      local first, second = ...
      name = text(first)
      if name == nil then fail('first argument to redis.register_function must be a string') end
      if lua_type(second) ~= 'function' then
        fail('second argument to redis.register_function must be a function')
      end
      callback = second
    else
      local named = ...
      if lua_type(named) ~= 'table' then
        fail('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).')
      end
      for k, v in lua_pairs(named) do
        local key = text(k)
        if key == nil then fail('named argument key given to redis.register_function is not a string') end
        key = lua_lower(key)
        if key == 'function_name' then
          name = text(v)
          if name == nil then fail('function_name argument given to redis.register_function must be a string') end
        elseif key == 'description' then
          description = text(v)
          if description == nil then fail('description argument given to redis.register_function must be a string') end
        elseif key == 'callback' then
          if lua_type(v) ~= 'function' then fail('callback argument given to redis.register_function must be a function') end
          callback = v
        elseif key == 'flags' then
          if lua_type(v) ~= 'table' then
            fail('flags argument to redis.register_function must be a table representing function flags')
          end
          local i = 1
          while true do
            local flag = v[i]
            if flag == nil then break end
            flag = text(flag)
            if flag == nil or not K.flags[lua_lower(flag)] then fail('unknown flag given') end
            flags[#flags + 1] = lua_lower(flag)
            i = i + 1
          end
        else
          fail('unknown argument given to redis.register_function')
        end
      end
      if name == nil then fail('redis.register_function must get a function name argument') end
      if callback == nil then fail('redis.register_function must get a callback argument') end
    end
    if not name:match('^[%w_]+$') then fail(K.bad_name) end
    local key = lua_lower(name)
    if registered.names[key] then fail('Function already exists in the library') end
    registered.names[key] = true
    registered[#registered + 1] = { name = name, callback = callback, flags = flags, description = description }
  end
  local loading_redis = strict(function(name) return loading[name] end)
  local fenv = strict(function(name)
    if not K.loading then return lookup(name) end
    if name == 'redis' then return loading_redis end
    return nil
  end)
  K.env = fenv

  -- Runs a library's code: true and what it registered, or false and an error table.
  K.load = function(chunk)
    K.loading = true
    K.registered = { names = {} }
    K.raised = nil
    K.killed = nil
    local ok, e = lua_xpcall(chunk, handler)
    local registered = K.registered
    K.loading = nil
    K.registered = nil
    if not ok then return false, e end
    return true, registered
  end

  -- Runs a function with its keys and arguments: as K.run does a script.
  K.run = function(f, keys, args)
    K[RESP] = 2
    K.raised = nil
    K.killed = nil
    return lua_xpcall(function() return f(keys, args) end, handler)
  end
end
