-- One side ends its chat on the relay (proven by its relay ticket: SESSION and ROLE).
-- Returns {'ok', seeker id, listener id}, or NOT_FOUND if the chat is not open.
local sid, lid = finish_chat(SESSION, ROLE == 's' and 'seeker' or 'listener')
if not sid then return err('NOT_FOUND', 'That chat is not open.') end
return { 'ok', sid, lid }
