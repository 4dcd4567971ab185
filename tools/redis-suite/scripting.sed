# The suite runs scripting.tcl twice: as FUNCTION LOAD/FCALL (is_eval 0) and as EVAL (1).
# kvs has no FUNCTION yet: only the EVAL pass runs.
s/^foreach is_eval {0 1} {/foreach is_eval {1} {/
