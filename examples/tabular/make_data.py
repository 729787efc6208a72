"""Write scikit-learn's breast cancer table (shipped with scikit-learn: nothing is downloaded) to a CSV
that ablate's built-in ``data=csv`` source reads: one row a patient, 30 numeric features, and the
column ``label`` (0 = malignant, 1 = benign).

    python examples/tabular/make_data.py             # writes examples/tabular/data/breast_cancer.csv
    python examples/tabular/make_data.py OUT.csv     # or anywhere else
"""

import sys
from pathlib import Path

from sklearn.datasets import load_breast_cancer

table = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
features = table.columns.drop("label")
# ablate feeds the columns as they are; the raw ones range from 0.001 to 4000, so standardise them
# (mean 0, sd 1). Over all rows, so the test split's statistics leak in a little: the same for every arm.
table[features] = (table[features] - table[features].mean()) / table[features].std()

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data" / "breast_cancer.csv"
out.parent.mkdir(parents=True, exist_ok=True)
table.to_csv(out, index=False, float_format="%.6g")
print(f"wrote {out}: {len(table)} rows, {len(features)} features, label counts {table.label.value_counts().to_dict()}")
