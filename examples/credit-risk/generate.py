"""Generate credit.csv: a synthetic, realistic consumer-credit data set for default prediction.

Each row is a loan applicant. The columns and their relationships follow what credit-risk
teams usually see, without using anyone's real data:

=====================  ======================================================================
column                 how it is drawn
=====================  ======================================================================
applicant_id           a unique id (left out of the model by default: ``*_id`` columns are)
age                    18-75, skewed towards 25-45
annual_income          log-normal around 48,000, higher with age up to 55
employment_years       0-40, at most age - 18
home_ownership         rent / mortgage / own, owning more likely with age
purpose                debt_consolidation / car / home_improvement / education / medical /
                       small_business
loan_amount            log-normal, scaled with income
interest_rate          8-30 %, higher for riskier applicants (as a lender would price them)
debt_to_income         existing monthly debt / monthly income, 0-0.6
credit_history_years   0-50, at most age - 18
delinquencies_2y       Poisson, more for risky applicants
credit_utilization     0-1, share of revolving credit in use
region                 north / south / east / west (used to slice the metrics)
default                1 if the loan defaulted within 12 months
=====================  ======================================================================

Default follows a logistic model of a latent risk score (debt-to-income, utilisation,
delinquencies, loan-to-income, short credit history, small-business and medical loans raise
it; income, home ownership and employment length lower it), calibrated so that about 12 % of
loans default, a typical rate for unsecured consumer lending. Noise keeps it imperfect: no
model should reach an ROC-AUC of 1.

Run ``python generate.py`` to rewrite credit.csv (deterministic for a given --seed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

PURPOSES = ["debt_consolidation", "car", "home_improvement", "education", "medical",
            "small_business"]  # fmt: skip
PURPOSE_WEIGHTS = [0.42, 0.16, 0.14, 0.08, 0.08, 0.12]
PURPOSE_RISK = {"debt_consolidation": 0.2, "car": -0.3, "home_improvement": -0.2,
                "education": 0.1, "medical": 0.4, "small_business": 0.7}  # fmt: skip


def generate(rows: int = 4000, seed: int = 7) -> pd.DataFrame:
    """The data set as a DataFrame (see the module docstring for the columns)."""
    rng = np.random.default_rng(seed)
    age = np.clip(rng.gamma(6.0, 6.0, rows) + 18, 18, 75).round()
    income = rng.lognormal(np.log(48_000), 0.45, rows) * (1 + 0.012 * np.minimum(age - 18, 37))
    employment = np.clip(rng.gamma(2.0, 3.5, rows), 0, age - 18).round()
    own_p = np.clip((age - 20) / 80, 0.02, 0.6)
    home = np.where(rng.random(rows) < own_p, "own",
                    np.where(rng.random(rows) < 0.45, "mortgage", "rent"))  # fmt: skip
    purpose = rng.choice(PURPOSES, rows, p=PURPOSE_WEIGHTS)
    loan = np.clip(income * rng.lognormal(np.log(0.25), 0.5, rows), 1_000, 60_000)
    dti = np.clip(rng.beta(2.2, 6.0, rows) * 0.75, 0, 0.6)
    history = np.clip(rng.gamma(3.0, 3.5, rows), 0, age - 18).round()
    utilization = np.clip(rng.beta(2.0, 3.0, rows), 0, 1)
    region = rng.choice(["north", "south", "east", "west"], rows, p=[0.3, 0.25, 0.25, 0.2])

    risk = (
        3.0 * dti
        + 1.8 * utilization
        + 1.2 * (loan / income)
        - 0.55 * np.log(income / 48_000)
        - 0.035 * employment
        - 0.03 * history
        + np.vectorize(PURPOSE_RISK.get)(purpose)
        + np.where(home == "own", -0.4, np.where(home == "mortgage", -0.15, 0.1))
        + np.where(region == "south", 0.15, 0.0)
    )
    delinquencies = rng.poisson(np.exp(risk - 1.8))
    risk = risk + 0.45 * delinquencies + rng.normal(0, 0.9, rows)
    # The lender prices risk: the rate rises with the (observable part of the) risk.
    rate = np.clip(9 + 4.5 * risk + rng.normal(0, 2.0, rows), 8, 30)
    intercept = _calibrate(risk, target_rate=0.12)
    default = (rng.random(rows) < 1 / (1 + np.exp(-(risk + intercept)))).astype(int)

    return pd.DataFrame(
        {
            "applicant_id": np.arange(1, rows + 1),
            "age": age.astype(int),
            "annual_income": income.round(-2),
            "employment_years": employment.astype(int),
            "home_ownership": home,
            "purpose": purpose,
            "loan_amount": loan.round(-2),
            "interest_rate": rate.round(2),
            "debt_to_income": dti.round(3),
            "credit_history_years": history.astype(int),
            "delinquencies_2y": delinquencies,
            "credit_utilization": utilization.round(3),
            "region": region,
            "default": default,
        }
    )


def _calibrate(risk: np.ndarray, *, target_rate: float) -> float:
    """The intercept that makes the mean default probability ``target_rate`` (bisection)."""
    low, high = -20.0, 20.0
    for _ in range(80):
        mid = (low + high) / 2
        rate = float(np.mean(1 / (1 + np.exp(-(risk + mid)))))
        low, high = (mid, high) if rate < target_rate else (low, mid)
    return (low + high) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("credit.csv"))
    args = parser.parse_args()
    frame = generate(args.rows, args.seed)
    frame.to_csv(args.output, index=False)
    print(f"wrote {args.output}: {len(frame)} rows, default rate {frame['default'].mean():.1%}")


if __name__ == "__main__":
    main()
