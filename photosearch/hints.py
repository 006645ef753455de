"""What a person can do next, in the words every face uses: without a model pack, and with a
pack that cannot refine. Standard library only, so the command line's quick paths (the query
socket) can say it without loading the engine."""

# Without a model pack.
NO_PACK_HINT = (
    "Get one with `photosearch models download` (a ready model, no torch needed; "
    "`photosearch models available` lists the choices), `photosearch models prepare` (with "
    "the export extra), `photosearch models import PACK_DIR|ZIP`, or try `photosearch demo`"
)


# What refining adds and how to get it, for a pack without a reranker (said once by each face).
REFINE_HINT = (
    "Refining re-reads the best matches with a cross-attention model, which follows detailed "
    "queries (colours, counts, 'a red car left of a white house') better than the fast "
    "search. Packs prepared here carry one: pip install 'photosearch[export]', then "
    "`photosearch models prepare` (in the window: Model packs…, Prepare); "
    "`photosearch models add-reranker PACK` gives this pack the reranker of such a pack."
)
