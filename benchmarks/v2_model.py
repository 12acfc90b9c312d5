"""What LLM×MapReduce-V2 would spend on a library: LLM calls and input tokens per stage.

A cost model of the design in thunlp/LLMxMapReduce, folder ``LLMxMapReduce_V2/src`` (called
"V2" below), derived from its code and prompts so the benchmark can print V2's figures next
to ours. Nothing here runs V2; it counts what V2's structure would send for a library of a
given shape. Token counts use ``surveygen.text.approx_tokens``'s convention (about 4
characters a token) so both columns are measured alike.

V2's flow for one survey (``src/start_pipeline.py`` EntirePipeline; the hidden pipeline's
nodes in ``src/hidden/hidden_pipeline.py``: group >> skeleton_init >> digest, then
digest >> skeleton_refine >> digest while ``block_cycle_count < block_count``, then the
decode pipeline):

* skeleton: one grouping call over all titles (GroupModule, groups of the kernel width W),
  ``ceil(G / Sg)`` outline calls over the abstracts of ``Sg`` groups each
  (SkeletonInitModule), one call merging those outlines (ConcatSkeletonNeuron);
* digest: one call per paper per pass, with the paper's full text (SingleDigestNeuron);
  ``B + 1`` passes, one before each refine block and one after the last;
* refine, per block (SkeletonRefineModule): one feedback call per paper group
  (FeedbackClusterNeuron), one score of the current outline, then the convolution layers
  (ConvolutionLayerModule, see ``_layer_groups``) and self-refinement (SelfRefineModule);
* write: one call per leaf section (ORCHESTRA_PROMPT), one per internal section once its
  children are written (SUMMARY_PROMPT), one chart call over the whole text (FigureModule).

What is not modelled: retries (every V2 neuron is wrapped in tenacity ``retry`` with 5 to 20
attempts, and a failed digest halves the paper text before retrying), V2's query generation
and crawling before the pipeline, and output tokens (V2 sets no ``max_tokens``). Papers are
assumed to be grouped perfectly, ``G = ceil(N / W)``: GroupModule's ``regroup_result`` can
leave groups smaller than W when the LLM's groups do not pack, which makes G a little larger.

Where the index held no copy of a V2 file under thunlp/LLMxMapReduce (``hidden_pipeline.py``,
``hidden/convolution_block/skeleton_module.py`` and ``refine_module.py`` are not listed
there), the text was read from unnamed copies found by exact-string search, whose classes and
signatures match the imports of the listed files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from surveygen.text import approx_tokens

__all__ = [
    "Library",
    "StageCost",
    "V2Options",
    "library_from_texts",
    "v2_breakdown",
    "v2_cost",
]

CHARS_PER_TOKEN = 4  # surveygen/text.py approx_tokens: one token per 4 characters


def _tokens(chars: float) -> int:
    """Tokens of ``chars`` characters, rounded up like approx_tokens."""
    return math.ceil(chars / CHARS_PER_TOKEN)


# --------------------------------------------------------------------------------------------
# Prompt templates. Each is the character span of the constant in V2's
# src/prompts/prompts_en.py, from its name to the next constant's name, measured by
# exact-string search in a stored 82,943-character copy (the copy listed under
# thunlp/LLMxMapReduce has 81,921 characters and the same constants in the same order). The
# span includes the assignment and the source's backslash escapes, so it overstates the sent
# template by a few dozen characters at most.

GROUP_TEMPLATE = _tokens(1_810)  # GROUP_PROMPT; GroupNeuron.forward (group_module.py)
INIT_OUTLINE_TEMPLATE = _tokens(6_557)  # INIT_OUTLINE_PROMPT; SingleSkeletonNeuron.forward
CONCAT_OUTLINE_TEMPLATE = _tokens(5_447)  # CONCAT_OUTLINE_PROMPT; ConcatSkeletonNeuron.forward
DIGEST_TEMPLATE = _tokens(6_474)  # SINGLE_DIGEST_PROMPT; SingleDigestNeuron.forward
FEEDBACK_TEMPLATE = _tokens(9_964)  # DIGEST_BASE_PROMPT; FeedbackClusterNeuron (skeleton_module)
SELF_REFINE_TEMPLATE = _tokens(7_199)  # DIGEST_FREE_PROMPT; SelfRefineNeuron.forward
KERNEL_TEMPLATE = _tokens(8_419)  # OUTLINE_CONVOLUTION_PROMPT; ConvolutionKernelNeuron.forward
MODIFY_TEMPLATE = _tokens(5_686)  # MODIFY_OUTLINE_PROMPT; ModifyOutlineNeuron "single_suggestion"
EVAL_TEMPLATE = _tokens(7_892)  # OUTLINE_ENTROPY_PROMPT; EvalOutlineNeuron.forward
LEAF_TEMPLATE = _tokens(5_672)  # ORCHESTRA_PROMPT; OrchestraNeuron.forward, leaf sections
INTERNAL_TEMPLATE = _tokens(6_986)  # SUMMARY_PROMPT; OrchestraNeuron.forward, other sections
CHART_TEMPLATE = _tokens(2_213)  # CHART_PROMPT; FigureNeuron.forward (decode/figure_module.py)

# How often each template inserts the survey title ({title} / {survey_title}), read off the
# templates: GROUP, INIT_OUTLINE, CONCAT_OUTLINE and MODIFY_OUTLINE twice (background and
# format example), SINGLE_DIGEST and CHART not at all, the others once.
TITLE_IN_GROUP = 2
TITLE_IN_INIT = 2
TITLE_IN_CONCAT = 2
TITLE_IN_MODIFY = 2

# --------------------------------------------------------------------------------------------
# Caps and framing taken from V2's code.

# data_structure/digest.py Digest.abstract: each abstract is cut to
# int(1500 * TOKEN_RATIO) = int(1500 * 3.6875) = 5,531 characters.
ABSTRACT_CAP = _tokens(int(1500 * 3.6875))
# data_structure/digest.py Digest.__init__: the paper text is cut to
# MAX_LENGTH = int(800000 * 3.6875) characters only past MAX_TOKEN = 800,000 tokens.
PAPER_CAP = _tokens(int(800_000 * 3.6875))
# data_structure/skeleton.py SkeletonNode.get_skeleton(with_digest_placeholder=True): every
# non-root section of the digest's format example carries this 186-character sentence
# ("Extracted relevant content from the given paper. If no related information ...").
DIGEST_PLACEHOLDER = _tokens(186)
# group_module.py format_papers_info: 'Title: "{title}" Bibkey: \'{bibkey}\'' around the two
# strings, 20 characters plus the newline.
GROUP_LINE_FRAME = _tokens(21)
# digest.py Digest.abstract and SingleSkeletonNeuron.format_abstract:
# "Bibkey: '{bibkey}':\nAbstract:\n" and the "\n---------------------\n" between abstracts,
# 45 characters around the two strings.
ABSTRACT_FRAME = _tokens(45)
# skeleton_init_module.py ConcatSkeletonNeuron._concat_outlines: "```markdown\n", "\n```" and
# "\n--------------------------\n" around each outline, 44 characters.
OUTLINE_FRAME = _tokens(44)
# digest_module.py MergeDigestNeuron.forward: "Paper bibkey: [{bibkey}]\nDigest: \n" before each
# paper's slice of a section and "--------------------\n" between slices, 47 characters.
DIGEST_LABEL_FRAME = _tokens(47)
# neurons.py FeedbackClusterNeuron.format_digests: "Bibkey: {bibkey}\nSuggestion: \n...\n" per
# paper, 24 characters around the two strings.
FEEDBACK_LINE_FRAME = _tokens(24)
# neurons.py ConvolutionKernelNeuron.concat_suggestions: "Suggestion Content: \n<CONTENT>\n",
# "\n</CONTENT>\n\nEvaluation: \n<EVALUATION>\n", "\n</EVALUATION>\n" and a 31-character
# separator around each suggestion, 118 characters.
KERNEL_SUGGESTION_FRAME = _tokens(118)
# neurons.py ModifyOutlineNeuron._concat_suggestions: "Suggestions: \n{content}\n".
MODIFY_SUGGESTION_FRAME = _tokens(15)

# --------------------------------------------------------------------------------------------
# Estimates: sizes V2's code does not fix.

# estimated: one heading line, "### 2.1 " and a title of about five words.
HEADING = 8
# estimated: V2's section descriptions have two parts, "Digest Construction" and "Digest
# Analysis" (INIT_OUTLINE_PROMPT's format example, SkeletonNode.parse_description), taken to be
# of equal length. The digest prompt gets construction only (all_skeleton(construction=True)),
# the writing prompts analysis only (get_skeleton(analysis=True)).
CONSTRUCTION_SHARE = 0.5
# estimated: SINGLE_DIGEST_PROMPT lets the model leave sections that do not apply to the paper
# empty (<EMPTY>); half of the sections are taken to get text, and only those get a label
# (MergeDigestNeuron skips empty descriptions).
DIGEST_FILLED_SHARE = 0.5
# estimated: the ```suggestion``` block that ends each SINGLE_DIGEST_PROMPT answer (three
# short principles: fit, coverage, future directions), a few paragraphs.
PAPER_SUGGESTION = 300
# estimated: an outline suggestion as DIGEST_BASE_PROMPT, OUTLINE_CONVOLUTION_PROMPT and
# DIGEST_FREE_PROMPT ask for it: one ```suggestion``` block of three groups of three cited
# bullets, about 600 words.
OUTLINE_SUGGESTION = 800
# estimated: EvalOutlineNeuron's answer (the eval_detail the kernel and self-refine prompts
# quote): a rationale with examples for each of OUTLINE_ENTROPY_PROMPT's six criteria, then
# <SCORE>, about 600 words.
EVAL_DETAIL = 800
# estimated: a survey title of about ten words, inserted where the templates say {title}.
TOPIC = 12


# --------------------------------------------------------------------------------------------
# Public types


@dataclass(frozen=True)
class Library:
    """What V2 would read of one library, in tokens (count with surveygen.text.approx_tokens).

    A paper whose ``paper_tokens`` is 0 is left out, as V2's ``Survey`` keeps only papers with
    text (data_structure/survey.py). V2's bibkeys are the titles lower-cased with ``_`` for
    spaces (utils/process_str.py proc_title_to_str), so a bibkey is counted as its title.
    ``outline_tokens`` stands for V2's outline with both description parts
    (``all_skeleton(construction=True, analysis=True)``), the size assumed for every outline
    V2 handles (initial, refined and candidate outlines alike).
    """

    # per paper: the text V2's digest sends (full text, or the abstract when there is none)
    paper_tokens: tuple[int, ...]
    abstract_tokens: tuple[int, ...]  # per paper
    title_tokens: tuple[int, ...]  # per paper
    leaves: int  # leaf sections of the outline
    internal: int  # internal (parent) sections, the root (survey title) not counted
    outline_tokens: int  # the outline as text
    digest_tokens: int  # one paper's digest as text (what refine/writing read of it)
    section_tokens: int  # one written section
    topic_tokens: int = TOPIC  # the survey title
    # Sum over internal sections of the sections below them (each internal section's prompt
    # holds all of their text). None: a two-level outline, every leaf under one internal
    # section, so the sum is the number of leaves.
    descendant_sections: int | None = None

    def __post_init__(self) -> None:
        n = len(self.paper_tokens)
        if len(self.abstract_tokens) != n or len(self.title_tokens) != n:
            raise ValueError("paper_tokens, abstract_tokens and title_tokens differ in length")
        counts = (*self.paper_tokens, *self.abstract_tokens, *self.title_tokens)
        sizes = (
            self.leaves,
            self.internal,
            self.outline_tokens,
            self.digest_tokens,
            self.section_tokens,
            self.topic_tokens,
        )
        if any(x < 0 for x in (*counts, *sizes)):
            raise ValueError("token counts and section counts must not be negative")
        if self.descendant_sections is not None and self.descendant_sections < 0:
            raise ValueError("descendant_sections must not be negative")


@dataclass(frozen=True)
class V2Options:
    """V2's knobs, defaults as its src/args.py and scripts/pipeline_start.sh set them."""

    layers: int = 6  # convolution layers: args.py --conv_layer default 6
    kernel: int = 3  # W: args.py --conv_kernel_width default 3 (also the paper group size)
    candidates: int = 10  # C: args.py --conv_result_num default 10
    blocks: int = 1  # B: scripts/pipeline_start.sh passes --block_count 1 (args.py default 0)
    skeleton_group: int = 3  # Sg: args.py --skeleton_group_size default 3 (2 in one version)
    # (cycles, best_of, calls per try): args.py --self_refine_count 3, --self_refine_best_of
    # 3; refine_module.py SingleRefineModule makes 3 calls per try (suggest, modify, eval).
    self_refine: tuple[int, int, int] = (3, 3, 3)
    top_k: int = 6  # suggestions kept between layers: args.py --top_k default 6

    def __post_init__(self) -> None:
        if self.layers < 0:
            raise ValueError(f"layers must be >= 0, got {self.layers}")
        if self.kernel < 2:
            raise ValueError(f"kernel must be >= 2, got {self.kernel}")
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        if self.blocks < 0:
            raise ValueError(f"blocks must be >= 0, got {self.blocks}")
        if self.skeleton_group < 1:
            raise ValueError(f"skeleton_group must be >= 1, got {self.skeleton_group}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if len(self.self_refine) != 3 or any(x < 0 for x in self.self_refine):
            raise ValueError(f"self_refine must be three counts >= 0, got {self.self_refine}")


@dataclass(frozen=True)
class StageCost:
    calls: int
    input_tokens: int

    def __add__(self, other: StageCost) -> StageCost:
        return StageCost(self.calls + other.calls, self.input_tokens + other.input_tokens)


_NONE = StageCost(0, 0)

STAGES = ("skeleton", "digest", "refine", "write")


def library_from_texts(
    texts: Sequence[str],
    abstracts: Sequence[str],
    titles: Sequence[str],
    *,
    leaves: int,
    internal: int,
    outline_tokens: int,
    digest_tokens: int,
    section_tokens: int,
    topic: str | None = None,
    descendant_sections: int | None = None,
) -> Library:
    """A :class:`Library` from the papers' texts; a paper without text counts its abstract
    as the text the digest would read."""
    if not len(texts) == len(abstracts) == len(titles):
        raise ValueError("texts, abstracts and titles differ in length")
    return Library(
        paper_tokens=tuple(approx_tokens(t or a) for t, a in zip(texts, abstracts, strict=True)),
        abstract_tokens=tuple(approx_tokens(a) for a in abstracts),
        title_tokens=tuple(approx_tokens(t) for t in titles),
        leaves=leaves,
        internal=internal,
        outline_tokens=outline_tokens,
        digest_tokens=digest_tokens,
        section_tokens=section_tokens,
        topic_tokens=TOPIC if topic is None else approx_tokens(topic),
        descendant_sections=descendant_sections,
    )


def v2_cost(library: Library, options: V2Options = V2Options()) -> dict[str, StageCost]:
    """Per stage: "skeleton", "digest", "refine", "write", and "total"."""
    parts = v2_breakdown(library, options)
    result = {stage: _NONE for stage in STAGES}
    for name, cost in parts.items():
        stage = name.split(".", 1)[0]
        result[stage] = result[stage] + cost
    result["total"] = sum((result[s] for s in STAGES), _NONE)
    return result


def v2_breakdown(library: Library, options: V2Options = V2Options()) -> dict[str, StageCost]:
    """The calls and input tokens of each step, keyed "<stage>.<step>" (refine steps summed
    over the blocks; "refine.layer<l>" for each convolution layer, 0 being the layer that
    only modifies and scores the outline per feedback)."""
    papers = [
        (min(text, PAPER_CAP), abstract, title)
        for text, abstract, title in zip(
            library.paper_tokens, library.abstract_tokens, library.title_tokens, strict=True
        )
        if text > 0
    ]
    if not papers:  # encode_pipeline.py: a survey with no papers is skipped
        return {}
    shape = _Shape(library, options, len(papers))
    parts: dict[str, StageCost] = {}
    parts.update(_skeleton(shape, papers))
    parts.update(_digest(shape, papers))
    parts.update(_refine(shape, papers))
    parts.update(_write(shape, papers))
    return parts


# --------------------------------------------------------------------------------------------
# The stages


class _Shape:
    """Sizes every stage needs, derived once from the library and the options."""

    def __init__(self, library: Library, options: V2Options, n: int) -> None:
        self.lib = library
        self.opt = options
        self.n = n
        self.groups = math.ceil(n / options.kernel)  # G: GroupModule(digest_batch=W)
        self.sections = library.leaves + library.internal
        self.topic = library.topic_tokens
        # The outline's heading lines (root and sections) and what is left for descriptions.
        self.headings = (self.sections + 1) * HEADING
        descriptions = max(0, library.outline_tokens - self.headings)
        self.outline = library.outline_tokens
        # all_skeleton(construction=True): headings and the Digest Construction parts.
        self.outline_construction = self.headings + round(descriptions * CONSTRUCTION_SHARE)
        # all_skeleton(with_digest_placeholder=True): headings and the placeholder sentence.
        self.outline_example = self.headings + self.sections * DIGEST_PLACEHOLDER
        # One section's get_skeleton(analysis=True): its heading and Digest Analysis part.
        per_section = descriptions / max(1, self.sections)
        self.section_outline = HEADING + round(per_section * (1 - CONSTRUCTION_SHARE))
        # Sections of the outline a paper's digest fills, each with a label in merged digests.
        self.filled = math.ceil(self.sections * DIGEST_FILLED_SHARE)


def _skeleton(shape: _Shape, papers: list[tuple[int, int, int]]) -> dict[str, StageCost]:
    opt, topic = shape.opt, shape.topic
    # GroupNeuron.forward: the template with one line per paper (title and bibkey).
    group = StageCost(
        1,
        GROUP_TEMPLATE
        + TITLE_IN_GROUP * topic
        + sum(2 * title + GROUP_LINE_FRAME for _, _, title in papers),
    )
    # SkeletonInitModule.forward: the G digests in batches of Sg, one outline call each, with
    # every abstract of the batch (bibkey and at most ABSTRACT_CAP of abstract).
    batches = math.ceil(shape.groups / opt.skeleton_group)
    init = StageCost(
        batches,
        batches * (INIT_OUTLINE_TEMPLATE + TITLE_IN_INIT * topic)
        + sum(
            title + min(abstract, ABSTRACT_CAP) + ABSTRACT_FRAME for _, abstract, title in papers
        ),
    )
    # ConcatSkeletonNeuron.forward: one call over all initial outlines.
    merge = StageCost(
        1,
        CONCAT_OUTLINE_TEMPLATE
        + TITLE_IN_CONCAT * topic
        + batches * (shape.outline + OUTLINE_FRAME),
    )
    return {"skeleton.group": group, "skeleton.init": init, "skeleton.merge": merge}


def _digest(shape: _Shape, papers: list[tuple[int, int, int]]) -> dict[str, StageCost]:
    # SingleDigestNeuron.forward, once per paper per pass: the paper's bibkey (twice), its
    # text, the construction outline (twice) and the format example.
    fixed = DIGEST_TEMPLATE + 2 * shape.outline_construction + shape.outline_example
    one_pass = sum(fixed + 2 * title + text for text, _, title in papers)
    passes = shape.opt.blocks + 1  # hidden_pipeline.py: digest before each block and after
    return {"digest.papers": StageCost(passes * len(papers), passes * one_pass)}


def _layer_groups(units: int, previous: int, opt: V2Options) -> tuple[list[int], int, int]:
    """One convolution layer (convolution_module.py ConvolutionLayerModule.forward and
    _sample_suggestions): the sizes of the suggestion groups it convolves, the number of
    suggestions the next layer starts from, and the number of this layer's results.

    With more than C·W suggestions the layer pools: the suggestions are cut into groups of W
    (the last one shorter) and all results go on. Otherwise it samples C groups of W (of all
    the suggestions when there are fewer than W), and the top_k of the previous and the new
    results go on."""
    width = opt.kernel
    if units > opt.candidates * width:
        sizes = [min(width, units - start) for start in range(0, units, width)]
        return sizes, len(sizes), len(sizes)
    sizes = [min(width, units)] * opt.candidates
    return sizes, min(opt.top_k, previous + opt.candidates), opt.candidates


def _refine(shape: _Shape, papers: list[tuple[int, int, int]]) -> dict[str, StageCost]:
    opt, topic, outline = shape.opt, shape.topic, shape.outline
    if opt.blocks == 0:
        return {}
    # FeedbackClusterNeuron.forward, one call per paper group: the full outline and the
    # group's merged digest (headings once; per paper its digest, a label per filled section
    # and its suggestion).
    per_paper = sum(
        shape.lib.digest_tokens
        + shape.filled * (title + DIGEST_LABEL_FRAME)
        + title
        + FEEDBACK_LINE_FRAME
        + PAPER_SUGGESTION
        for _, _, title in papers
    )
    feedback = StageCost(
        shape.groups,
        shape.groups * (FEEDBACK_TEMPLATE + topic + outline + shape.headings) + per_paper,
    )
    # EvalOutlineNeuron over an outline; ModifyOutlineNeuron with one suggestion.
    evaluate = EVAL_TEMPLATE + topic + outline
    modify = MODIFY_TEMPLATE + TITLE_IN_MODIFY * topic + outline
    modify += OUTLINE_SUGGESTION + MODIFY_SUGGESTION_FRAME

    def kernel(size: int) -> StageCost:
        # ConvolutionModule.forward: ConvolutionKernelNeuron returns a lone suggestion as it
        # is, without a call; then one modify and one eval call.
        if size < 2:
            return StageCost(2, modify + evaluate)
        merged = KERNEL_TEMPLATE + topic + outline
        merged += size * (OUTLINE_SUGGESTION + EVAL_DETAIL + KERNEL_SUGGESTION_FRAME)
        return StageCost(3, merged + modify + evaluate)

    parts = {
        "refine.feedback": feedback,
        "refine.score": StageCost(1, evaluate),  # the origin outline's score
        "refine.layer0": sum((kernel(1) for _ in range(shape.groups)), _NONE),
    }
    units = previous = shape.groups
    for layer in range(1, opt.layers + 1):
        sizes, units, previous = _layer_groups(units, previous, opt)
        parts[f"refine.layer{layer}"] = sum((kernel(size) for size in sizes), _NONE)
    # SelfRefineModule: cycles × best_of tries of SingleRefineModule (a DIGEST_FREE_PROMPT
    # suggestion from the outline and its eval_detail, a modify and an eval call).
    cycles, best_of, calls = opt.self_refine
    suggest = SELF_REFINE_TEMPLATE + topic + outline + EVAL_DETAIL
    per_try = (suggest + modify + evaluate) * calls / 3
    tries = cycles * best_of
    parts["refine.self_refine"] = StageCost(tries * calls, round(tries * per_try))
    return {
        name: StageCost(c.calls * opt.blocks, c.input_tokens * opt.blocks)
        for name, c in parts.items()
    }


def _write(shape: _Shape, papers: list[tuple[int, int, int]]) -> dict[str, StageCost]:
    lib, topic = shape.lib, shape.topic
    if shape.sections == 0:
        return {}
    # Every section's prompt holds every paper group's slice of the digest for it
    # (ContentNode.digest_nodes), spread evenly: over all section calls, each paper's whole
    # digest and a label per filled section.
    slices = sum(
        lib.digest_tokens + shape.filled * (title + DIGEST_LABEL_FRAME) for _, _, title in papers
    )
    leaf_slices = round(slices * lib.leaves / shape.sections)
    # OrchestraNeuron.forward: the section's description twice ({outline} is in both the
    # leaf and the parent template twice) and the digest slices.
    leaf = StageCost(
        lib.leaves,
        lib.leaves * (LEAF_TEMPLATE + topic + 2 * shape.section_outline) + leaf_slices,
    )
    descendants = lib.leaves if lib.descendant_sections is None else lib.descendant_sections
    if lib.internal == 0:
        descendants = 0
    internal = StageCost(
        lib.internal,
        lib.internal * (INTERNAL_TEMPLATE + topic + 2 * shape.section_outline)
        + (slices - leaf_slices)
        + descendants * (HEADING + lib.section_tokens),  # {subcontents}: the text below it
    )
    # FigureNeuron.forward: the whole survey (Content.all_content, a heading per section and
    # the root) and the comma-joined section titles.
    text = (shape.sections + 1) * HEADING + shape.sections * lib.section_tokens
    chart = StageCost(1, CHART_TEMPLATE + text + (shape.sections + 1) * HEADING)
    return {"write.leaf": leaf, "write.internal": internal, "write.chart": chart}
