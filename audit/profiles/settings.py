"""Spec settings of the regulatory profiles (``report.profiles``, ``report.ll144``, ``report.eu_ai_act``).

They live apart from :mod:`audit.config` so the profiles can grow without touching it; the
config imports these models. Every model forbids unknown keys, as the rest of the spec does.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROFILE_NAMES = ("ll144", "eu_ai_act")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryColumn(_Strict):
    """A demographic column and the categories the bias audit reports on."""

    column: str = Field(description="a column of the data (for model audits: one of data.sensitive)")
    categories: list[str] = Field(min_length=1, description="the categories, in report order, as the data spells them")
    unknown: list[str] = Field(
        default_factory=list, description="values meaning 'unknown' (missing values always are); any other value is an error"
    )

    @model_validator(mode="after")
    def _distinct(self) -> "CategoryColumn":
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"{self.column}: categories must be distinct; found {self.categories}")
        overlap = sorted(set(self.categories) & set(self.unknown))
        if overlap:
            raise ValueError(f"{self.column}: {overlap} cannot be both a category and unknown")
        return self


class LL144Settings(_Strict):
    """NYC Local Law 144 bias audit (6 RCNY 5-300, 5-301): what the tables are built from."""

    method: Literal["selection", "scoring"] = Field(
        "selection", description="selection: the tool selects or classifies; scoring: the tool scores (rates above the median)"
    )
    sex: CategoryColumn | None = None
    race_ethnicity: CategoryColumn | None = None
    exclude_small_categories: bool = Field(
        False, description="leave categories under 2% of the data out of the impact ratios (5-301(d)); needs a justification"
    )
    exclusion_justification: str | None = Field(None, description="the independent auditor's justification for the exclusion")
    tool: str | None = Field(None, description="name of the automated employment decision tool")
    distribution_date: str | None = Field(None, description="the date the employer began using the tool")
    data_source: str | None = Field(None, description="source and explanation of the data used")
    data_type: Literal["historical", "test"] = Field("historical", description="5-302: historical data, or test data")
    test_data_explanation: str | None = Field(None, description="with test data: why historical data was not used, how the test data was made")
    data_period: str | None = Field(None, description="the period the data covers, e.g. 2024-01-01 to 2024-12-31")
    audit_date: dt.date | None = Field(None, description="ISO date of the audit (YYYY-MM-DD); default: the day the audit ran")
    auditor: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "LL144Settings":
        if self.sex is None and self.race_ethnicity is None:
            raise ValueError("give sex and/or race_ethnicity: the column and its categories")
        if self.exclude_small_categories and not (self.exclusion_justification or "").strip():
            raise ValueError("exclude_small_categories needs exclusion_justification (5-301(d) requires it in the summary)")
        if self.data_type == "test" and not (self.test_data_explanation or "").strip():
            raise ValueError("data_type 'test' needs test_data_explanation (5-302(b) requires it in the summary)")
        return self


class EUAIActSettings(_Strict):
    """Provider statements for the EU AI Act technical documentation; the audit never invents them."""

    provider: str | None = None
    system_name: str | None = None
    intended_purpose: str | None = Field(None, description="Annex IV 1(a); Article 13(3)(b)(i)")
    human_oversight: str | None = Field(None, description="Annex IV 2(e); Article 14 measures")
    validation_data_description: str | None = Field(None, description="Annex IV 2(g): how the test data was obtained and selected")
    foreseeable_misuse: str | None = Field(None, description="Annex IV 3: known or foreseeable circumstances of risk")
    cybersecurity: str | None = Field(None, description="Article 15(4)-(5) measures beyond what the audit tested")
    risk_management: str | None = Field(None, description="Annex IV 5: the risk-management system (Article 9)")
