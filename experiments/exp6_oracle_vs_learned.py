"""Experiment 6: oracle vs learned — how much of each sampler effect is the sampler alone."""

from _common import cells, load_run, write


def main() -> None:
    s, args = load_run()
    rows = []
    for c in cells(s, grammar="default", model="mdlm", temperature=1.0):
        o = cells(s, grammar="default", model="oracle", temperature=1.0, sampler=c["sampler"], attack=c["attack"])
        if o:
            o = o[0]
            rows.append({"sampler": c["sampler"], "attack": c["attack"], "asr_learned": c["asr"],
                         "asr_oracle": o["asr"], "diff": c["asr"] - o["asr"],
                         "se": (c["asr_se"] ** 2 + o["asr_se"] ** 2) ** 0.5, "exact": c.get("exact_harmful_rate")})
    write("exp6_oracle_vs_learned", {"rows": rows}, s, args)


if __name__ == "__main__":
    main()
