"""Write diabetes.csv from the diabetes data set that ships with scikit-learn (no download).

442 patients, ten baseline measurements, and the target: a quantitative measure of disease
progression one year after baseline (Efron et al., 2004, "Least Angle Regression").
scikit-learn ships the features mean-centred and scaled; ``scaled=False`` gives the original
units, which is what a clinic's export would contain, so this script writes those:

age, sex (1/2), bmi, bp (mean blood pressure), s1 (tc, total cholesterol), s2 (ldl),
s3 (hdl), s4 (tch, total/hdl), s5 (ltg, log of serum triglycerides), s6 (glu, blood sugar),
progression (the target).

Run ``python export.py`` to rewrite diabetes.csv.
"""

from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_diabetes

NAMES = {"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tch", "s5": "ltg", "s6": "glu"}


def main() -> None:
    data = load_diabetes(as_frame=True, scaled=False)
    frame = data.frame.rename(columns={**NAMES, "target": "progression"})
    frame["sex"] = frame["sex"].astype(int)
    output = Path(__file__).with_name("diabetes.csv")
    frame.to_csv(output, index=False)
    print(f"wrote {output}: {len(frame)} rows, columns {', '.join(frame.columns)}")


if __name__ == "__main__":
    main()
