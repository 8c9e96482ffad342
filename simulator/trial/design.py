"""Trial design files: safe YAML loading and validation into frozen pydantic models.

A design file holds one ``trial:`` mapping (see ``docs/trials.md`` for every key)::

    trial:
      name: two_cycles_vs_label
      scenario: ../configs/label_dosing.yaml     # base of the strategy arms (relative to this file)
      arms:
        - {name: label}                          # the base scenario itself
        - {name: two_cycles, overrides: {regimen: {max_cycles: 2}}}
      control: label
      sample_size: 400
      enrollment: {rates: [20.0]}                # patients per month; the last rate continues
      dropout: {probability: 0.05, months: 12}
      analyses: [{events: 120}, {events: 240}]
      tests: [{name: os_logrank, type: logrank, endpoint: os}]
      spending: {function: obf}
      n_trials: 10000
      seed: 2025

Every error is raised as :class:`~simulator.model.config.ConfigError` with one line
naming the file and the key path, e.g. ``t.yaml: trial.analyses.0.events: input should
be greater than or equal to 1, got 0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.analysis.outcomes import METRICS
from simulator.model.config import ConfigError, Scenario, validate
from simulator.model.files import derive_scenario, load_scenario, read_yaml

MAX_SLOTS = 1 << 20  # patients per trial: trial-scoped patient ids are trial * MAX_SLOTS + slot
MAX_TRIALS = 1 << 40  # so that patient ids stay below 2**60
MAX_ARMS = 8
MAX_LOOKS = 10
TIME_ENDPOINTS = ("os", "pfs", "nrm")  # nrm: death without relapse after HSCT (competing risks kept at risk)
BINARY_ENDPOINTS = ("cr_cri", "sos_post_hsct", "grade3_ae")
# the metric each binary endpoint counts (its direction of better is the metric's: Metric.better)
ENDPOINT_METRIC = {"cr_cri": "cr_cri", "sos_post_hsct": "post_hsct_sos_any", "grade3_ae": "grade3plus_ae"}
TIME_TESTS = ("logrank", "maxcombo", "cox", "rmst", "milestone")
BINARY_TESTS = ("proportions", "fisher", "cmh")
STRATIFICATION_FACTORS = ("salvage_line", "age_55", "prior_hsct")
SCENARIO_ONLY_KEYS = (set(Scenario.model_fields) | {"extends"}) - {"name", "description"}  # keys no design has

Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Months = Annotated[float, Field(ge=0.0, le=1200.0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PiecewiseRates(_Model):
    """Rates by period: ``rates[i]`` holds for ``durations[i]`` months; the last rate continues."""

    rates: Annotated[list[NonNegative], Field(min_length=1, max_length=50)]
    durations: Annotated[list[Positive], Field(max_length=49)] = []

    @model_validator(mode="after")
    def _lengths(self) -> PiecewiseRates:
        if len(self.durations) != len(self.rates) - 1:
            raise ValueError(f"durations: need {len(self.rates) - 1} (one per rate but the last), "
                             f"got {len(self.durations)}")
        return self


class Enrollment(PiecewiseRates):
    """Piecewise-constant enrolment rates (patients per month).

    ``random: true`` (default): a Poisson process, as simtrial; ``false``: patients evenly
    spaced in cumulative intensity (patient ``i`` enters when it reaches ``i``), as rpact.
    """

    random: bool = True

    @model_validator(mode="after")
    def _last_rate_positive(self) -> Enrollment:
        if self.rates[-1] <= 0.0:
            raise ValueError("rates: the last rate continues until every patient is enrolled, "
                             "so it must be positive")
        return self


class Dropout(_Model):
    """Exponential dropout: a rate per month, or the probability of dropping out by ``months``."""

    rate: NonNegative | None = None
    probability: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    months: Positive | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Dropout:
        if (self.rate is None) == (self.probability is None):
            raise ValueError("give either rate (per month) or probability and months")
        if (self.probability is None) != (self.months is None):
            raise ValueError("probability needs months (and months needs probability)")
        return self


class LogHazardRatioPrior(_Model):
    """Normal prior on the log hazard ratio of a piecewise-exponential arm: its hazards times exp(L),
    L ~ N(mean, sd^2), one L per draw of a trial over draws (classical assurance, O'Hagan et al. 2005)."""

    mean: float
    sd: NonNegative


class Arm(_Model):
    """One arm: a dosing strategy (a scenario file or overrides of the base), or piecewise-exponential."""

    name: Annotated[str, Field(min_length=1, max_length=60)]
    scenario: str | None = Field(None, description="scenario file, relative to the design file")
    overrides: dict[str, Any] | None = Field(None, description="changes to the base scenario")
    piecewise_exponential: PiecewiseRates | None = Field(
        None, description="hazard of every time-to-event endpoint, per month, by period")
    ratio: Annotated[int, Field(ge=1, le=10)] = 1
    dropout: Dropout | None = None
    log_hazard_ratio: LogHazardRatioPrior | None = Field(
        None, description="piecewise-exponential arms: prior on the log hazard ratio (trials over draws)")

    @model_validator(mode="after")
    def _one_source(self) -> Arm:
        given = [k for k in ("scenario", "overrides", "piecewise_exponential") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of scenario, overrides, piecewise_exponential, got {given}")
        if self.log_hazard_ratio is not None and self.piecewise_exponential is None:
            raise ValueError("log_hazard_ratio: a prior on the hazard ratio needs piecewise_exponential "
                             "(strategy arms take their uncertainty from the posterior ensemble)")
        return self


class Randomization(_Model):
    """Permuted blocks, within strata when ``strata`` are given."""

    block_size: Annotated[int, Field(ge=1, le=64)] | None = Field(
        None, description="patients per block, a multiple of the sum of the ratios (default: that sum)")
    strata: list[Literal[STRATIFICATION_FACTORS]] = []


class Analysis(_Model):
    """One look: simtrial's rule cut = min(max(calendar, events, previous + gap, min follow-up), max extension).

    Times are months from the first patient's entry; unset criteria are ignored.
    """

    events: Annotated[int, Field(ge=1)] | None = None
    endpoint: Literal[TIME_ENDPOINTS] = "os"
    calendar: Months | None = None
    min_follow_up: Months | None = Field(None, description="months after the last patient entered")
    gap: Months | None = Field(None, description="months after the previous look")
    max_extension: Months | None = None
    information: Annotated[float, Field(gt=0.0, le=1.0)] | None = Field(
        None, description="planned information fraction (default: events / final events)")

    @model_validator(mode="after")
    def _some_criterion(self) -> Analysis:
        if self.events is None and self.calendar is None and self.min_follow_up is None:
            raise ValueError("give at least one of events, calendar, min_follow_up")
        return self


class Test(_Model):
    """One analysis of one endpoint, done at every look for every experimental arm vs control."""

    name: Annotated[str, Field(min_length=1, max_length=60)]
    type: Literal[TIME_TESTS + BINARY_TESTS]
    endpoint: Literal[TIME_ENDPOINTS + BINARY_ENDPOINTS]
    stratified: bool = False
    rho: Annotated[float, Field(ge=0.0, le=5.0)] = 0.0
    gamma: Annotated[float, Field(ge=0.0, le=5.0)] = 0.0
    ties: Literal["efron", "breslow"] = "efron"
    tau: Positive | None = Field(None, description="RMST horizon, months")
    time: Positive | None = Field(None, description="milestone, months")
    evaluation_months: Months = Field(
        0.0, description="binary endpoints: patients count once followed this long")

    @model_validator(mode="after")
    def _consistent(self) -> Test:
        binary = self.endpoint in BINARY_ENDPOINTS
        if binary != (self.type in BINARY_TESTS):
            kind = "a binary" if binary else "a time-to-event"
            raise ValueError(f"type {self.type} does not apply to {kind} endpoint ({self.endpoint})")
        if self.type == "rmst" and self.tau is None:
            raise ValueError("rmst needs tau (months)")
        if self.type == "milestone" and self.time is None:
            raise ValueError("milestone needs time (months)")
        if self.stratified and self.type not in ("logrank", "maxcombo", "cox", "cmh"):
            raise ValueError(f"type {self.type} has no stratified form")
        return self


class Futility(_Model):
    """Futility bounds: z values per look, or beta spending under the alternative ``theta``."""

    z: list[float] | None = None
    beta: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    theta: Positive | None = Field(None, description="expected z at full information under the alternative")
    function: Literal["obf", "pocock", "hsd", "power"] = "obf"
    param: float = 0.0

    @model_validator(mode="after")
    def _one_form(self) -> Futility:
        if (self.z is None) == (self.beta is None):
            raise ValueError("give either z (bounds per look) or beta and theta (beta spending)")
        if (self.beta is None) != (self.theta is None):
            raise ValueError("beta spending needs both beta and theta")
        return self


class Spending(_Model):
    """Lan-DeMets alpha spending, optional futility."""

    function: Literal["obf", "pocock", "hsd", "power"] = "obf"
    param: float = 0.0
    futility: Futility | None = None
    binding: bool = False
    information: Literal["planned", "observed"] = "planned"

    @model_validator(mode="after")
    def _param(self) -> Spending:
        if self.function == "power" and self.param <= 0.0:
            raise ValueError("param: the power family needs rho = param > 0")
        return self


class Selection(_Model):
    """Dose selection at an interim look: the best arm on a utility, or every arm above a threshold.

    utility = P(CR/CRi) - weight * P(post-HSCT SOS), among patients followed ``evaluation_months``.
    """

    look: Annotated[int, Field(ge=1)]
    rule: Literal["best", "threshold"] = "best"
    weight: NonNegative = 1.0
    threshold: float | None = None
    evaluation_months: Months = 0.0
    multiplicity: Literal["bonferroni", "dunnett"] = "bonferroni"

    @model_validator(mode="after")
    def _threshold(self) -> Selection:
        if (self.rule == "threshold") != (self.threshold is not None):
            raise ValueError("rule threshold needs threshold (and threshold needs rule threshold)")
        return self


class Benefit(_Model):
    """The true benefit of a trial over draws: experimental minus control in every patient's copy under
    both arms (the counterfactual truth), positive = better for patients. Time endpoints: the share
    free of the event at ``months``; binary endpoints: the share with the outcome (signed by its
    better direction)."""

    endpoint: Literal[TIME_ENDPOINTS + BINARY_ENDPOINTS] = "os"
    months: Positive | None = 24.0

    @model_validator(mode="after")
    def _months(self) -> Benefit:
        if (self.endpoint in TIME_ENDPOINTS) != (self.months is not None):
            raise ValueError("months: needed for a time-to-event endpoint, and only for one")
        return self


class Assurance(_Model):
    """Trials over draws (``inosim trial --ensemble``): each draw of the posterior ensemble (strategy
    arms) or of the arms' hazard-ratio priors (piecewise-exponential arms) runs its own trials."""

    ensemble: str | None = Field(None, description="ensemble netCDF, relative to the design file "
                                                   "(default: the shipped posterior ensemble)")
    draws: Annotated[int, Field(ge=1, le=100_000)] | None = Field(None, description="default: every draw")
    trials_per_draw: Annotated[int, Field(ge=2, le=100_000)] = 50
    truth_patients: Annotated[int, Field(ge=100, le=MAX_SLOTS)] = 4000
    benefit: Benefit = Benefit()
    relevant_difference: float = Field(0.05, description="clinically relevant true benefit (benefit's units)")
    sizes: list[Annotated[int, Field(ge=2, le=MAX_SLOTS)]] = Field(
        [], description="nested sample sizes (the same patients): assurance at each")


class Design(_Model):
    """A randomised trial on the virtual patients."""

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    scenario: str | None = Field(None, description="base scenario of the strategy arms")
    arms: Annotated[list[Arm], Field(min_length=2, max_length=MAX_ARMS)]
    control: str
    randomization: Randomization = Randomization()
    sample_size: Annotated[int, Field(ge=2, le=MAX_SLOTS)]
    enrollment: Enrollment
    dropout: Dropout = Dropout(rate=0.0)
    analyses: Annotated[list[Analysis], Field(min_length=1, max_length=MAX_LOOKS)]
    tests: Annotated[list[Test], Field(min_length=1)]
    primary: str | None = Field(None, description="test that decides (default: the first)")
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.025
    sided: Literal[1, 2] = 1
    spending: Spending = Spending()
    selection: Selection | None = None
    n_trials: Annotated[int, Field(ge=1, le=MAX_TRIALS)] = 10_000
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 2025
    null: bool = Field(False, description="every arm gets the control's strategy (type I error)")
    assurance: Assurance | None = Field(None, description="run the trials over draws (see Assurance)")

    @model_validator(mode="after")
    def _consistent(self) -> Design:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arms: names must be unique, got {names}")
        if self.control not in names:
            raise ValueError(f"control: '{self.control}' is not an arm ({names})")
        tests = [t.name for t in self.tests]
        if len(set(tests)) != len(tests):
            raise ValueError(f"tests: names must be unique, got {tests}")
        if self.primary is not None and self.primary not in tests:
            raise ValueError(f"primary: '{self.primary}' is not a test ({tests})")
        pe = [a.name for a in self.arms if a.piecewise_exponential is not None]
        if pe and len(pe) != len(self.arms):
            raise ValueError("arms: mix of piecewise_exponential and strategy arms "
                             f"({', '.join(pe)} vs the others)")
        if pe:
            binary = [t.name for t in self.tests if t.endpoint in BINARY_ENDPOINTS]
            if binary:
                raise ValueError(f"tests: {binary[0]}: binary endpoints need strategy arms")
            if self.randomization.strata:
                raise ValueError("randomization.strata: strata are patient covariates, "
                                 "which piecewise-exponential arms do not have")
            if self.selection is not None:
                raise ValueError("selection: needs strategy arms (CR/CRi and SOS)")
            nrm = [t.name for t in self.tests if t.endpoint == "nrm"] + [
                "analyses" for a in self.analyses if a.endpoint == "nrm"]
            if self.assurance is not None and self.assurance.benefit.endpoint not in ("os", "pfs"):
                nrm.append("assurance.benefit")
            if nrm:
                raise ValueError(f"{nrm[0]}: the nrm and binary endpoints need strategy arms")
        elif self.scenario is None and any(a.scenario is None for a in self.arms):
            raise ValueError("scenario: strategy arms without their own scenario file need a base scenario")
        if any(t.stratified for t in self.tests) and not self.randomization.strata:
            raise ValueError("tests: a stratified test needs randomization.strata")
        ratio = sum(a.ratio for a in self.arms)
        block = self.randomization.block_size
        if block is not None and block % ratio:
            raise ValueError(f"randomization.block_size: {block} is not a multiple of the sum of the "
                             f"arms' ratios ({ratio})")
        self._check_looks()
        if self.selection is not None:
            if len(self.arms) < 3:
                raise ValueError("selection: needs two or more experimental arms")
            if self.selection.look >= len(self.analyses):
                raise ValueError(f"selection.look: {self.selection.look} must be an interim look "
                                 f"(1 .. {len(self.analyses) - 1})")
            if self.spending.information == "observed":
                raise ValueError("spending.information: observed information is not supported with selection")
        return self

    def _check_looks(self) -> None:
        looks = self.analyses
        events = [a.events for a in looks]
        if all(e is not None for e in events) and len({a.endpoint for a in looks}) == 1:
            if any(b <= a for a, b in zip(events, events[1:])):
                raise ValueError(f"analyses: event targets must increase, got {events}")
        elif len(looks) > 1 and any(a.information is None for a in looks):
            raise ValueError("analyses: looks not all cut by events of one endpoint need 'information' "
                             "(planned information fraction) on every look")
        given = [a.information for a in looks if a.information is not None]
        if any(b <= a for a, b in zip(given, given[1:])):
            raise ValueError(f"analyses: information fractions must increase, got {given}")
        f = self.spending.futility
        if f is not None and f.z is not None and len(f.z) != len(looks):
            raise ValueError(f"spending.futility.z: one bound per look ({len(looks)}), got {len(f.z)}")
        if self.spending.information == "observed" and (events[-1] is None or len(looks) == 1):
            raise ValueError("spending.information: observed needs a final look cut by events")

    @property
    def primary_test(self) -> Test:
        """The test that decides (``primary`` or the first)."""
        return next(t for t in self.tests if t.name == (self.primary or self.tests[0].name))

    @property
    def experimental(self) -> list[str]:
        """Names of the experimental arms, in file order."""
        return [a.name for a in self.arms if a.name != self.control]


class DesignFile(_Model):
    """The top level of a design file."""

    trial: Design


def design_from_dict(doc: dict, source: str | Path) -> Design:
    """Validate a design mapping (the whole file, with its ``trial:`` key).

    A scenario file given instead (no ``trial:`` key, scenario keys such as
    ``regimen``) is refused as such, naming the command that runs it.
    """
    if "trial" not in doc and set(doc) & SCENARIO_ONLY_KEYS:
        raise ConfigError(f"{source}: a scenario file, not a trial design (which has a 'trial:' mapping, "
                          f"see docs/trials.md); run a scenario with `inosim run {source}`")
    return validate(DesignFile, doc, source).trial


def load_design(path: str | Path) -> Design:
    """Load and validate a trial design file.

    Parameters
    ----------
    path : str or Path
        Design YAML with a top-level ``trial:`` mapping.

    Returns
    -------
    Design
        The validated design; scenario files it names are checked too (see
        :func:`arm_scenarios`).

    Raises
    ------
    ConfigError
        One line naming the file and the key path.
    """
    path = Path(path)
    design = design_from_dict(read_yaml(path), path)
    arm_scenarios(design, path.parent, path)
    return design


def arm_scenarios(design: Design, folder: str | Path, source: str | Path) -> dict[str, Scenario | None]:
    """The validated scenario of every arm (None for piecewise-exponential arms).

    With ``design.null`` every arm gets the control's. Scenario files are resolved
    relative to ``folder`` (the design file's folder).
    """
    folder = Path(folder)

    def load(file: str, where: str) -> Scenario:
        try:
            return load_scenario(folder / file)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {where}: {exc}") from None

    base = load(design.scenario, "trial.scenario") if design.scenario is not None else None
    out: dict[str, Scenario | None] = {}
    for i, arm in enumerate(design.arms):
        where = f"trial.arms.{i}"
        if arm.piecewise_exponential is not None:
            out[arm.name] = None
        elif arm.scenario is not None:
            out[arm.name] = load(arm.scenario, f"{where}.scenario")
        elif arm.overrides is not None:
            out[arm.name] = derive_scenario(base, arm.overrides, f"{source}: {where}.overrides")
        else:
            out[arm.name] = base
    if design.null:
        out = {name: out[design.control] for name in out}
    return out


def lower_is_better(endpoint: str) -> bool:
    """Whether fewer events of a binary endpoint are better for patients (time endpoints: False)."""
    metric = ENDPOINT_METRIC.get(endpoint)
    return metric is not None and next(m for m in METRICS if m.id == metric).better == "lower"
