-- The relay ends a chat: one side said so (ARGV[7] = 'seeker' | 'listener', already proven by
-- its relay ticket) or nobody wrote for the idle limit ('idle'). ARGV[6] = session id.
-- Returns {'ok', seeker id, listener id}, or NOT_FOUND if the chat is not open.
local session, by = ARGV[6], ARGV[7]
local sid, lid = finish_chat(session, by)
if not sid then return err('NOT_FOUND', 'That chat is not open.') end
return { 'ok', sid, lid }
