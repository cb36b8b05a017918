-- One sample of the supervisors' stats history, taken by at most one process per step. Every
-- process offers a sample once per step; the first one in a step is kept. ARGV[8] = the
-- sample's time (ms), [9] the sample (binary warmline.v1.StatsSnapshot), [10] step (ms),
-- [11] how much history to keep (ms). Returns {'ok', 1} when stored, {'ok', 0} when this step
-- already has its sample.
local at, step, keep = tonumber(ARGV[8]), tonumber(ARGV[10]), tonumber(ARGV[11])
local key = K.stats_history
local last = redis.call('ZREVRANGE', key, 0, 0, 'WITHSCORES')
if last[2] and math.floor(tonumber(last[2]) / step) >= math.floor(at / step) then return { 'ok', 0 } end
redis.call('ZADD', key, fmt(at), ARGV[9])
redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(at - keep))
redis.call('PEXPIRE', key, fmt(keep + step))
return { 'ok', 1 }
