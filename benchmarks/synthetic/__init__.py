"""A synthetic compositional image–caption benchmark: its world, tiny trained models, the table.

- :mod:`.scenes` renders small scenes of coloured shapes from a seed, with an exact description
  of each (objects, counts, relations), captions from paraphrase templates, and families of hard
  distractors (swapped relation, exchanged colours, other relation);
- :mod:`.train` trains open_clip's CoCa on it (contrastive + captioning), and optionally
  distils the captioner into the dual encoder;
- :mod:`.evaluate` measures text → image retrieval through exported packs and photosearch's own
  runtime: fast, slow, fast + rerank, timings, pairwise accuracy per distractor kind;
- :mod:`.run` chains them: train → export → evaluate → ``benchmarks/results/synthetic.{md,json}``.

Run everything from the repository root, e.g. ``python -m benchmarks.synthetic.run --preset smoke``.
"""
