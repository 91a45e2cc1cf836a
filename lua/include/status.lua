-- status: the first element of the reply of a write that can refuse itself (set, delete, update,
--   transaction), named here and once in Python (Status in motia_state/backends/redis/plan.py).
-- KEYS: none. ARGV: none.
-- Returns: nothing; defines local constants STATUS_CONFLICT (a version condition failed: nothing
--   was written), STATUS_OK (done) and STATUS_REFUSED (an update op cannot apply: nothing was
--   written).
-- Keys touched: none.
local STATUS_CONFLICT, STATUS_OK, STATUS_REFUSED = 0, 1, 2
