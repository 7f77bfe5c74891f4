-- Issue 13 (session 31): the feed's trigger functions keep their plans.
-- The server's connections run with plan_cache_mode = force_custom_plan
-- (lib.rs: planning each run with its values keeps the catch-all filters of
-- its own statements fast), and PL/pgSQL's cached plans follow that setting
-- too: every trigger run planned each of its statements again. On the loaded
-- bench machine that was about 2 ms of planning per verification (the two
-- UPDATEs' triggers), more than their execution. The triggers' statements
-- are key look-ups, whose generic plan is the custom one: inside these
-- functions the default mode applies again. Nothing else changes: same
-- bodies, same rows logged, same feed.
ALTER FUNCTION log_ticket() SET plan_cache_mode = auto;
ALTER FUNCTION log_ticket_reservation() SET plan_cache_mode = auto;
ALTER FUNCTION log_scoped_row() SET plan_cache_mode = auto;
