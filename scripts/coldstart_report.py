"""reports/coldstart.json + .md from the runs of ./build.sh report-coldstart (argv[1]: their train
report). `summary` is also what scripts/second_dataset_report.py reports for its dataset."""
import json, os, statistics, sys


def spread(xs):
    return {"mean": statistics.mean(xs), "stdev": statistics.stdev(xs) if len(xs) > 1 else 0.0, "runs": xs}


def summary(runs, protocol, command):
    """Seed means and spread of the cold-start figures of `runs` (train report models, one per
    holdout seed, each with its `cold_start`)."""
    cold = [m["cold_start"] for m in runs]
    out = {
        "protocol": protocol,
        "seeds": [c["seed"] for c in cold],
        "test_users": [c["test_users"] for c in cold],
        "recall@10": spread([c["model"]["recall@10"] for c in cold]),
        "ndcg@10": spread([c["model"]["ndcg@10"] for c in cold]),
        "popularity_recall@10": spread([c["popularity"]["recall@10"] for c in cold]),
        "random_recall@10": cold[0]["random_recall@10"],
        "median_rank_among_new": spread([c["median_rank_among_new"] for c in cold]),
        "popularity_median_rank_among_new": spread([c["popularity_median_rank_among_new"] for c in cold]),
        "random_median_rank_among_new": cold[0]["random_median_rank_among_new"],
        "held_out_items": cold[0]["held_out_items"],
        # Every test user of every seed pooled: the share whose target the model puts in the top
        # 10 of the new items only.
        "pooled_new_arrivals_hit@10": sum(r < 10 for c in cold for r in c["ranks_among_new"])
        / max(1, sum(len(c["ranks_among_new"]) for c in cold)),
        "full_catalogue_test_ndcg@10": spread([m["test"]["ndcg@10"] for m in runs]),
        "command": command,
    }
    out["ratio_to_random"] = out["recall@10"]["mean"] / out["random_recall@10"]
    if all("catalogue_popularity" in c for c in cold):
        # Popularity by the catalogue's figures at test time, which count new items too.
        out["catalogue_popularity"] = {
            "recall@10": spread([c["catalogue_popularity"]["recall@10"] for c in cold]),
            "full_catalogue_test_ndcg@10": spread([c["catalogue_popularity_every_test_user"]["ndcg@10"] for c in cold]),
            "median_rank_among_new": spread([c["catalogue_popularity_median_rank_among_new"] for c in cold]),
        }
    # With --holdout-valid-items: the new-item prior chosen on each seed's validation users,
    # and the same figures under it (whole test and cold-start users).
    priors = [m.get("new_item_prior") for m in runs]
    if all(priors):
        out["new_item_prior"] = {
            "offsets": [p["offset"] for p in priors],
            "valid_new_items": [p["valid_new_items"] for p in priors],
            "valid_users_with_a_new_target": [p["valid_users_with_a_new_target"] for p in priors],
            "recall@10": spread([c["model_with_prior"]["recall@10"] for c in cold]),
            "ndcg@10": spread([c["model_with_prior"]["ndcg@10"] for c in cold]),
            "full_catalogue_test_ndcg@10": spread([p["test"]["ndcg@10"] for p in priors]),
            # Validation NDCG@10 (every validation user) per offset tried, seed mean and spread,
            # and the new-item targets found (Recall@10; absent in runs before it was recorded).
            "valid_sweep": [
                {"offset": round(o, 4), "valid_ndcg@10": spread([p["sweep"][i]["valid_ndcg@10"] for p in priors]),
                 **({"valid_new_target_recall@10": spread([p["sweep"][i]["valid_new_target_recall@10"] for p in priors])}
                    if all("valid_new_target_recall@10" in p["sweep"][i] for p in priors) else {})}
                for i, o in enumerate(x["offset"] for x in priors[0]["sweep"])
            ],
        }
        out["new_item_prior"]["ratio_to_random"] = out["new_item_prior"]["recall@10"]["mean"] / out["random_recall@10"]
    # The neighbour mix: chosen on the validation of every seed pooled (129-odd users whose
    # target is new instead of 43 per seed), by the rule each run applies to its own; the
    # test figures of that choice are read off each run's grid.
    mixes = [m.get("neighbour_mix") for m in runs]
    if all(mixes) and all(m.get("test_grid") for m in mixes):
        users = [p["valid_users_with_a_new_target"] for p in priors] if all(priors) else [1] * len(mixes)
        key = lambda x: (round(x["own"], 4), x["neighbours"] if x["own"] < 1 else 0)
        grid = []
        for i, point in enumerate(mixes[0]["sweep"]):
            rows = [m["sweep"][i] for m in mixes]
            assert all(key(r) == key(point) for r in rows), "the runs swept different mixes"
            grid.append({
                "own": round(point["own"], 4), "neighbours": point["neighbours"],
                "valid_ndcg@10": spread([r["valid_ndcg@10"] for r in rows]),
                # Pooled: every seed's validation users whose target is new, together.
                "valid_new_target_recall@10": sum(r["valid_new_target_recall@10"] * n for r, n in zip(rows, users)) / sum(users),
            })
        plain = grid[0]
        floor = plain["valid_ndcg@10"]["mean"] * 0.98
        ok = [g for g in grid if g["valid_ndcg@10"]["mean"] >= floor]
        chosen = max(ok, key=lambda g: (g["valid_new_target_recall@10"], g["valid_ndcg@10"]["mean"], g["own"]))
        at = lambda m, g: next(t for t in m["test_grid"] if key(t) == key(g))
        out["neighbour_mix"] = {
            "chosen": {"own": chosen["own"], "neighbours": chosen["neighbours"]},
            "chosen_on": "every seed's validation pooled: the most new-item targets found (Recall@10) with NDCG@10 over every validation user at least 0.98 x the unmixed model's (seed means)",
            "per_seed_choice": [{"own": round(m["own"], 4), "neighbours": m["neighbours"]} for m in mixes],
            "valid_sweep": grid,
            "recall@10": spread([at(m, chosen)["cold_start_test"]["recall@10"] for m in mixes]),
            "ndcg@10": spread([at(m, chosen)["cold_start_test"]["ndcg@10"] for m in mixes]),
            "full_catalogue_test_ndcg@10": spread([at(m, chosen)["test"]["ndcg@10"] for m in mixes]),
            "unmixed_full_catalogue_test_ndcg@10": spread([at(m, plain)["test"]["ndcg@10"] for m in mixes]),
        }
        out["neighbour_mix"]["ratio_to_random"] = out["neighbour_mix"]["recall@10"]["mean"] / out["random_recall@10"]
        # The order of a new-arrivals shelf in the product (`<ranklet-shelf only="new">`), which
        # places new items by this mix: the target's rank among the new items by the mixed vectors
        # (absent in runs from before it was recorded).
        ranks = [at(m, chosen).get("cold_start_ranks_among_new") for m in mixes]
        if all(r is not None for r in ranks):
            out["neighbour_mix"]["median_rank_among_new"] = spread([sorted(r)[len(r) // 2] for r in ranks])
            out["neighbour_mix"]["pooled_new_arrivals_hit@10"] = sum(x < 10 for r in ranks for x in r) / max(1, sum(map(len, ranks)))
    # The catalogue-popularity lift over the default mix: chosen on every seed's validation pooled,
    # by the rule of the mix (floor: 0.98 x the sweep's best seed-mean NDCG@10); its test figures
    # read off each run's grid.
    lifts = [m.get("new_item_popularity") for m in runs]
    if all(lifts) and all(x.get("test_grid") for x in lifts):
        users = [p["valid_users_with_a_new_target"] for p in priors] if all(priors) else [1] * len(lifts)
        key = lambda x: (round(x["offset"], 4), round(x["weight"], 4))
        grid = []
        for i, point in enumerate(lifts[0]["sweep"]):
            rows = [x["sweep"][i] for x in lifts]
            assert all(key(r) == key(point) for r in rows), "the runs swept different lifts"
            grid.append({"offset": key(point)[0], "weight": key(point)[1],
                         "valid_ndcg@10": spread([r["valid_ndcg@10"] for r in rows]),
                         "valid_new_target_recall@10": sum(r["valid_new_target_recall@10"] * n for r, n in zip(rows, users)) / sum(users)})
        best = max(g["valid_ndcg@10"]["mean"] for g in grid)
        ok = [g for g in grid if g["valid_ndcg@10"]["mean"] >= best * 0.98]
        chosen = max(ok, key=lambda g: (g["valid_new_target_recall@10"], g["valid_ndcg@10"]["mean"], -(abs(g["offset"]) + g["weight"])))
        at = lambda x, g: next(t for t in x["test_grid"] if key(t) == key(g))
        none = next(g for g in grid if g["offset"] == 0 and g["weight"] == 0)
        ranks_users = [c["test_users"] for c in cold]
        out["popularity_lift"] = {
            "chosen": {"offset": chosen["offset"], "weight": chosen["weight"]},
            "over": lifts[0]["over"],
            "chosen_on": "every seed's validation pooled: the most new-item targets found (Recall@10) with NDCG@10 over every validation user at least 0.98 x the best lift's (seed means)",
            "per_seed_choice": [{"offset": round(x["offset"], 4), "weight": round(x["weight"], 4)} for x in lifts],
            "popularity": lifts[0]["popularity"],
            "valid_best_ndcg@10": best,
            "valid_chosen": chosen,
            "valid_none": none,
            "frontier": frontier(grid),
            "grid_size": len(grid),
            "recall@10": spread([at(x, chosen)["cold_start_test"]["recall@10"] for x in lifts]),
            "ndcg@10": spread([at(x, chosen)["cold_start_test"]["ndcg@10"] for x in lifts]),
            "full_catalogue_test_ndcg@10": spread([at(x, chosen)["test_ndcg@10"] for x in lifts]),
            "mix_full_catalogue_test_ndcg@10": spread([at(x, none)["test_ndcg@10"] for x in lifts]),
            "mix_recall@10": spread([at(x, none)["cold_start_test"]["recall@10"] for x in lifts]),
            "median_rank_among_new": spread([at(x, chosen)["cold_start_median_rank_among_new"] for x in lifts]),
            "pooled_new_arrivals_hit@10": sum(at(x, chosen)["cold_start_new_arrivals_hits@10"] for x in lifts) / max(1, sum(ranks_users)),
        }
        out["popularity_lift"]["ratio_to_random"] = out["popularity_lift"]["recall@10"]["mean"] / out["random_recall@10"]
    # The new-arrival places (the end of the shelf kept for the best new items), likewise.
    arrivals = [m.get("new_arrivals") for m in runs]
    if all(arrivals):
        out["new_arrivals"] = {
            "slots": [a["slots"] for a in arrivals],
            "recall@10": spread([c["model_with_new_arrivals"]["recall@10"] for c in cold]),
            "full_catalogue_test_ndcg@10": spread([a["test"]["ndcg@10"] for a in arrivals]),
            "valid_sweep": [
                {"slots": x["slots"],
                 "valid_ndcg@10": spread([a["sweep"][i]["valid_ndcg@10"] for a in arrivals]),
                 "valid_new_target_recall@10": spread([a["sweep"][i]["valid_new_target_recall@10"] for a in arrivals])}
                for i, x in enumerate(arrivals[0]["sweep"])
            ],
        }
    return out


def frontier(grid):
    """The lifts no other beats on both pooled validation figures (NDCG@10 seed mean, new-target
    Recall@10), best NDCG first."""
    pts = sorted(grid, key=lambda g: (-g["valid_ndcg@10"]["mean"], -g["valid_new_target_recall@10"]))
    out, most = [], -1.0
    for g in pts:
        if g["valid_new_target_recall@10"] > most:
            out.append(g)
            most = g["valid_new_target_recall@10"]
    return out


def lift_table(out):
    """The catalogue-popularity lift: its validation frontier and the chosen lift's test figures."""
    x = out.get("popularity_lift")
    if not x:
        return []
    f = lambda s, d=4: f"{s['mean']:.{d}f} ± {s['stdev']:.{d}f}"
    c = x["chosen"]
    best = x["valid_best_ndcg@10"]
    rows = ["| offset | weight | validation NDCG@10, every user (seed mean) | × the best lift's | validation Recall@10 of the users whose target is new (seeds pooled) |",
            "|---|---|---|---|---|"]
    for g in (g for g in x["frontier"] if g["valid_ndcg@10"]["mean"] >= 0.8 * best):
        mark = " **(chosen)**" if (g["offset"], g["weight"]) == (c["offset"], c["weight"]) else ""
        rows.append(f"| {g['offset']:g} | {g['weight']:g}{mark} | {g['valid_ndcg@10']['mean']:.4f} ± {g['valid_ndcg@10']['stdev']:.4f} | "
                    f"{g['valid_ndcg@10']['mean'] / best:.3f} | {g['valid_new_target_recall@10']:.4f} |")
    m = out.get("neighbour_mix", {})
    cp = out.get("catalogue_popularity")
    cpc = lambda key, d=4: f(cp[key], d) if cp else ""
    result = ["| | default mix | default mix + popularity lift | the catalogue's popularity alone | random |", "|---|---|---|---|---|",
              f"| Recall@10 of the cold-start users over the whole catalogue | {f(x['mix_recall@10'])} | {f(x['recall@10'])} ({x['ratio_to_random']:.1f}× random) | {cpc('recall@10')} | {out['random_recall@10']:.4f} |",
              f"| NDCG@10 of every test user | {f(x['mix_full_catalogue_test_ndcg@10'])} | {f(x['full_catalogue_test_ndcg@10'])} | {cpc('full_catalogue_test_ndcg@10')} | |",
              f"| median rank of the target among the new items only | {f(out['neighbour_mix']['median_rank_among_new'], 1) if 'median_rank_among_new' in out.get('neighbour_mix', {}) else ''} | {f(x['median_rank_among_new'], 1)} | {cpc('median_rank_among_new', 1)} | {out['random_median_rank_among_new']:.1f} |",
              f"| target in the top 10 of the new items only (users pooled) | {out['neighbour_mix'].get('pooled_new_arrivals_hit@10', float('nan')):.3f} | {x['pooled_new_arrivals_hit@10']:.3f} | | {10 / out['held_out_items']:.3f} |"]
    cost = x["full_catalogue_test_ndcg@10"]["mean"] / x["mix_full_catalogue_test_ndcg@10"]["mean"]
    plain_ratio = x["full_catalogue_test_ndcg@10"]["mean"] / out["full_catalogue_test_ndcg@10"]["mean"]
    seeds = ", ".join("{:g} + {:g}·q".format(p["offset"], p["weight"]) for p in x["per_seed_choice"])
    return ["**Catalogue popularity for new items.** What a new item's text cannot tell is how often it is chosen, and the shop's "
            "catalogue can: its `popularity` figures keep counting after training, new items' too. The lift adds `offset + weight · q` "
            "cosines to a new item's score, `q = ln(1 + p) / ln(1 + p_max)` its log popularity as a share of the catalogue's most "
            "popular item's (a logit linear in the log count, as a softmax over items learns popularity; free of the unit the shop "
            "counts in), over the mix a bundle applies by default (own "
            f"{x['over']['own']:g}, {x['over']['neighbours']} neighbours). In the protocol, `p` is each item's count in the histories that "
            "validation (for the choice) or the test (for the figures) reads: what the catalogue would show at that time, no target "
            "counted. Chosen over every seed's validation pooled by the mix's rule against the sweep's best lift; validation ranks "
            "without the test-held items, which no validation user can target (a lift on them would only cost there). "
            f"Each run alone would have chosen {seeds}. The validation frontier of the sweep ({x['grid_size']} lifts; shown: "
            "those no other beats on both figures, down to 0.8× the best):", "", *rows, "",
            *result, "",
            f"Chosen: {c['offset']:g} + {c['weight']:g}·q. On the test it finds {x['recall@10']['mean']:.4f} of the cold-start users' targets "
            f"({x['ratio_to_random']:.1f}× random, target ≥ 5×) at {cost:.3f}× the default mix's NDCG@10 over every test user ({plain_ratio:.3f}× "
            "the unmixed model's: validation held its cost within 0.98×, but it holds 5 % of the items out as new and the test 15 % "
            "(its own and validation's), so a policy that lifts new items puts more of them on the test's shelves). "
            "This lift is the default a bundle carries (`new_items.popularity` in its manifest; a run that holds out validation items "
            "records its own choice), and the recommend path applies it, natively (`ranklet recommend --catalog`) and in the browser, "
            "to the catalogue items the model never trained on, from the catalogue's `popularity` figures (a partitioned index's "
            "candidates against the catalogue's largest figure, which its manifest records); a catalogue without figures gets no "
            "lift."
            + (f" The catalogue's popularity alone (every visitor shown the most counted items, new ones included) finds "
               f"{cp['recall@10']['mean']:.4f} ± {cp['recall@10']['stdev']:.4f} of the cold-start users' targets, more and far less "
               "evenly (on some seeds a held-out film is among the ten most counted, on others none is), at "
               f"{cp['full_catalogue_test_ndcg@10']['mean']:.4f} NDCG@10 over every test user, "
               f"{cp['full_catalogue_test_ndcg@10']['mean'] / x['full_catalogue_test_ndcg@10']['mean']:.2f}× the model's with the lift; "
               "among the new items alone it orders worse than the lifted model." if cp else "")]


def table(out):
    """The figures as markdown rows (the model's, popularity's and random's)."""
    f = lambda s, d=4: f"{s['mean']:.{d}f} ± {s['stdev']:.{d}f}"
    return ["| | model (inductive) | popularity | random |", "|---|---|---|---|",
            f"| Recall@10 over the whole catalogue | {f(out['recall@10'])} ({out['ratio_to_random']:.1f}× random) | {f(out['popularity_recall@10'])} | {out['random_recall@10']:.4f} |",
            f"| NDCG@10 over the whole catalogue | {f(out['ndcg@10'])} | | |",
            f"| median rank of the target among the new items only (0 = first) | {f(out['median_rank_among_new'], 1)} | {f(out['popularity_median_rank_among_new'], 1)} | {out['random_median_rank_among_new']:.1f} |",
            f"| target in the top 10 of the new items only (every seed's users pooled) | {out['pooled_new_arrivals_hit@10']:.3f} | | {10 / out['held_out_items']:.3f} |",
            *mixed_arrival_rows(out),
            f"| NDCG@10 of every test user (the whole catalogue) | {f(out['full_catalogue_test_ndcg@10'])} | | |"]


def mixed_arrival_rows(out):
    """The new-arrivals rows by the chosen mix's vectors, the order the product's new-arrivals shelf
    shows (empty when the runs did not record them)."""
    m = out.get("neighbour_mix", {})
    if "median_rank_among_new" not in m:
        return []
    s = m["median_rank_among_new"]
    ch = m["chosen"]
    rows = [f"| the same two by the neighbour mix's vectors (own {ch['own']:g}, {ch['neighbours']} neighbours): the order of "
            f"`<ranklet-shelf only=\"new\">` over a catalogue without popularity figures | {s['mean']:.1f} ± {s['stdev']:.1f}; "
            f"{m['pooled_new_arrivals_hit@10']:.3f} | | {out['random_median_rank_among_new']:.1f}; {10 / out['held_out_items']:.3f} |"]
    lift = out.get("popularity_lift")
    if lift:
        ls = lift["median_rank_among_new"]
        rows.append(f"| the same two with the mix and the catalogue-popularity lift: that shelf's order over a catalogue with figures | "
                    f"{ls['mean']:.1f} ± {ls['stdev']:.1f}; {lift['pooled_new_arrivals_hit@10']:.3f} | | "
                    f"{out['random_median_rank_among_new']:.1f}; {10 / out['held_out_items']:.3f} |")
    return rows


def prior_table(out):
    """The figures with and without the new-item prior (empty when it was not chosen)."""
    p = out.get("new_item_prior")
    if not p:
        return []
    f = lambda s, d=4: f"{s['mean']:.{d}f} ± {s['stdev']:.{d}f}"
    return ["| | model | model + new-item prior | random |", "|---|---|---|---|",
            f"| Recall@10 of the cold-start users over the whole catalogue | {f(out['recall@10'])} ({out['ratio_to_random']:.1f}× random) | {f(p['recall@10'])} ({p['ratio_to_random']:.1f}× random) | {out['random_recall@10']:.4f} |",
            f"| NDCG@10 of the cold-start users | {f(out['ndcg@10'])} | {f(p['ndcg@10'])} | |",
            f"| NDCG@10 of every test user | {f(out['full_catalogue_test_ndcg@10'])} | {f(p['full_catalogue_test_ndcg@10'])} | |",
            f"| the prior chosen on validation (cosine added to a new item's score), per seed | | {', '.join(f'{o:.4g}' for o in p['offsets'])} | |"]


def sweep_table(out):
    """Validation NDCG@10 per offset tried (seed mean ± spread), and what the choice says."""
    p = out["new_item_prior"]
    plain = next(x["valid_ndcg@10"]["mean"] for x in p["valid_sweep"] if x["offset"] == 0)
    recall = lambda x: (f" {x['valid_new_target_recall@10']['mean']:.4f} ± {x['valid_new_target_recall@10']['stdev']:.4f} |"
                        if "valid_new_target_recall@10" in x else " |")
    rows = ["| offset (cosine) | validation NDCG@10, every validation user | × no prior | validation Recall@10 of the users whose target is new |",
            "|---|---|---|---|"]
    rows += [f"| {x['offset']:g} | {x['valid_ndcg@10']['mean']:.4f} ± {x['valid_ndcg@10']['stdev']:.4f} | {x['valid_ndcg@10']['mean'] / plain:.3f} |" + recall(x)
             for x in p["valid_sweep"]]
    lifted = [x["valid_ndcg@10"]["mean"] for x in p["valid_sweep"] if x["offset"] > 0]
    if all(o == 0 for o in p["offsets"]):
        lowered = [x["valid_ndcg@10"]["mean"] for x in p["valid_sweep"] if x["offset"] < 0]
        flat = all(abs(v - plain) < 1e-9 for v in lowered)
        verdict = ("Validation chose no prior on any seed: every lift lowered validation NDCG@10 "
                   f"(the smallest tried, to {lifted[0] / plain:.3f}×)"
                   + (", and lowering the new items changed nothing (they were in no one's top 10 already)" if flat else "")
                   + ". The new items the test holds out are a random tenth of a catalogue whose long tail is most of it; lifting "
                   "them all takes places from the trained items that most users' targets are. The prior is therefore not "
                   "applied.")
    elif all(o <= 0 for o in p["offsets"]):
        verdict = ("Validation never chose a lift (offsets per seed: " + ", ".join(f"{o:g}" for o in p["offsets"]) + "): "
                   f"every lift lowered validation NDCG@10 (the smallest tried, to {lifted[0] / plain:.3f}× over the seeds), and "
                   "where it chose an offset it pushed the new items down. The product applies no prior.")
    else:
        lifts = sum(o > 0 for o in p["offsets"])
        first = next(x for x in p["valid_sweep"] if x["offset"] > 0)
        zero = next(x for x in p["valid_sweep"] if x["offset"] == 0)
        found = lambda x: f"{x['valid_new_target_recall@10']['mean']:.4f}" if "valid_new_target_recall@10" in x else "some"
        mix = out.get("neighbour_mix")
        than_mix = (f", against {mix['recall@10']['mean']:.4f} ({mix['ratio_to_random']:.1f}× random) with the neighbour mix, which the "
                    "recommend path applies; the product applies no prior" if mix else "")
        verdict = (f"Validation chose a lift on {lifts} of {len(p['offsets'])} seeds (offsets per seed: "
                   + ", ".join(f"{o:.4g}" for o in p["offsets"]) + f"); the smallest lift, {first['offset']:g}, costs "
                   f"{1 - lifted[0] / plain:.1%} of validation NDCG@10 over the seeds and finds {found(first)} of the validation "
                   f"new-item targets against {found(zero)} without it. On the test it finds "
                   f"{p['recall@10']['mean']:.4f} ± {p['recall@10']['stdev']:.4f} of the cold-start users' targets "
                   f"({p['ratio_to_random']:.1f}× random){than_mix}.")
    return rows + ["", verdict]


def arrivals_table(out):
    """Validation's figures per number of reserved places (seed mean ± spread), and the choice."""
    a = out.get("new_arrivals")
    if not a:
        return []
    plain = next(x["valid_ndcg@10"]["mean"] for x in a["valid_sweep"] if x["slots"] == 0)
    f = lambda s: f"{s['mean']:.4f} ± {s['stdev']:.4f}"
    rows = ["| places kept for new items (of 10) | validation NDCG@10, every validation user | × no places | validation Recall@10 of the users whose target is new |",
            "|---|---|---|---|"]
    rows += [f"| {x['slots']} | {f(x['valid_ndcg@10'])} | {x['valid_ndcg@10']['mean'] / plain:.3f} | {f(x['valid_new_target_recall@10'])} |"
             for x in a["valid_sweep"]]
    chosen = ", ".join(str(s) for s in a["slots"])
    return ["**New-arrival places.** The other way to give new items their due is a shelf policy: the last places of the top 10 "
            "go to the new items the model ranks best (it orders them well among themselves), the first places stay the model's. "
            "Chosen per seed on validation: the most validation new-item targets found while NDCG@10 over every validation user "
            "stays at least 0.98 × the model's order (the tolerance the calibrated re-ranking is held to). "
            f"Places chosen per seed: {chosen}.", "", *rows, "", arrivals_verdict(a, plain)]


def arrivals_verdict(a, plain):
    one = next((x for x in a["valid_sweep"] if x["slots"] == 1), None)
    if all(s == 0 for s in a["slots"]) and one:
        return (f"Validation kept the model's order on every seed: one place already lowers validation NDCG@10 to {one['valid_ndcg@10']['mean'] / plain:.3f}× "
                "(the tenth place still holds many users' next item) and finds "
                f"{one['valid_new_target_recall@10']['mean']:.4f} of the new-item targets. The product's shelf is the model's order.")
    pooled = ""
    if one and one["valid_ndcg@10"]["mean"] < 0.98 * plain:
        pooled = (f" Over the seeds pooled, one place lowers validation NDCG@10 to {one['valid_ndcg@10']['mean'] / plain:.3f}×, "
                  "below the 0.98 floor: the product's shelf keeps the model's order.")
    return (f"Places were chosen on {sum(s > 0 for s in a['slots'])} of {len(a['slots'])} seeds. Test figures with each seed's choice: "
            f"Recall@10 of the cold-start users {a['recall@10']['mean']:.4f} ± {a['recall@10']['stdev']:.4f}, NDCG@10 of every test "
            f"user {a['full_catalogue_test_ndcg@10']['mean']:.4f}." + pooled)


def mix_table(out):
    """The neighbour mix: the pooled validation sweep and the chosen mix's test figures."""
    x = out.get("neighbour_mix")
    if not x:
        return []
    f = lambda s, d=4: f"{s['mean']:.{d}f} ± {s['stdev']:.{d}f}"
    plain = x["valid_sweep"][0]["valid_ndcg@10"]["mean"]
    c = x["chosen"]
    rows = ["| own share | neighbours | validation NDCG@10, every user (seed mean) | × unmixed | validation Recall@10 of the users whose target is new (seeds pooled) |",
            "|---|---|---|---|---|"]
    rows += [f"| {g['own']:g} | {g['neighbours'] if g['own'] < 1 else '–'} | {f(g['valid_ndcg@10'])} | {g['valid_ndcg@10']['mean'] / plain:.3f} | {g['valid_new_target_recall@10']:.4f} |"
             for g in x["valid_sweep"]]
    result = ["| | unmixed | neighbour mix | random |", "|---|---|---|---|",
              f"| Recall@10 of the cold-start users over the whole catalogue | {f(out['recall@10'])} ({out['ratio_to_random']:.1f}× random) | {f(x['recall@10'])} ({x['ratio_to_random']:.1f}× random) | {out['random_recall@10']:.4f} |",
              f"| NDCG@10 of the cold-start users | {f(out['ndcg@10'])} | {f(x['ndcg@10'])} | |",
              f"| NDCG@10 of every test user | {f(x['unmixed_full_catalogue_test_ndcg@10'])} | {f(x['full_catalogue_test_ndcg@10'])} | |"]
    per_seed = ", ".join(f"{p['own']:g}/{p['neighbours']}" for p in x["per_seed_choice"])
    return ["**Neighbour mix.** A new item's vector is the tower's guess from its text; the trained items' vectors are where the "
            "softmax put them against one another. The mix moves a new item towards the trained items whose texts are nearest to "
            "its own: its unit vector times the own share plus the mean unit vector of its nearest trained items times the rest "
            "(a cold item as the mean of its warm content neighbours, with a share of its own kept). Chosen on validation by the "
            "rule the re-rankings are held to — the most validation targets that are new items found while NDCG@10 over every "
            "validation user stays at least 0.98 × the unmixed model's — over every seed's validation pooled (one seed's 43 users "
            f"move by a whole hit per 0.023); each run alone would have chosen {per_seed} (own/neighbours). Chosen: own {c['own']:g}, "
            f"{c['neighbours']} neighbour{'s' if c['neighbours'] != 1 else ''}. Every mix's test figures are recorded in the runs; only this one is reported. "
            "This mix is the default a bundle carries (`new_items.mix` in its manifest; a run that holds out validation items records "
            "its own choice), and the recommend path applies it, natively and in the browser, to every catalogue item the model never "
            "trained on, and `ranklet index` places them the same way in the rows it writes.",
            "", *rows, "", *result]


# What each ablation run of scripts/report-coldstart.sh changed, by the start of its name.
ABLATIONS = [
    ("inductive-coldstart-td05", "dropout 0.5 instead of 0.2 on the text vectors entering the item tower "
                                 "(`--text-dropout 0.5`), so that the adaptor leans less on any one text dimension"),
    ("transductive-iddrop0-", "text + ID (`--mode transductive`): each trained item also has an ID embedding; a held-out item "
                              "has none (its row is zero), as an item added after training has none"),
    ("transductive-iddrop0.5", "text + ID with ID dropout (`--mode transductive --id-dropout 0.5`, DropoutNet): each training "
                               "step leaves half the items' ID embeddings out, so that the text path alone must rank them, as it must "
                               "rank a new item"),
    ("inductive-poplogits", "logit adjustment (`--popularity-logits`, Menon et al. 2021): each item's ln(1 + training count) is "
                            "added to its logit in training and ranking, so that the item vectors learn what a visitor prefers beyond "
                            "how often an item is chosen, which a new item's text cannot tell; a new item gets the mean logit of its 10 "
                            "nearest trained items by text"),
]


def first_lifting_offset(sweep):
    """The smallest new-item offset of a run's prior sweep that finds a validation new target, with
    what it finds and its validation NDCG@10 against the sweep's best (empty when none does)."""
    best = max(g["valid_ndcg@10"] for g in sweep)
    lifting = sorted((g for g in sweep if g["valid_new_target_recall@10"] > 0), key=lambda g: g["offset"])
    if not lifting:
        return {}
    g = lifting[0]
    return {"first_lifting_offset": round(g["offset"], 4), "first_lifting_valid_new_target_recall@10": g["valid_new_target_recall@10"],
            "first_lifting_valid_ndcg@10_ratio": g["valid_ndcg@10"] / best}


def ablation(base, other, what, run):
    """One seed's run with a training setting changed (`other`, of the ablation named by its run-name
    prefix `run`) against the same seed's run of the report (`base`): the figures validation reads,
    and the test figures beside them."""
    def figures(m):
        c = m["cold_start"]
        sweep = m["neighbour_mix"]["sweep"]
        floor = 0.98 * sweep[0]["valid_ndcg@10"]
        return {"best_epoch": m["best_epoch"], "valid_ndcg@10": m["valid"]["ndcg@10"], "test_ndcg@10": m["test"]["ndcg@10"],
                "cold_recall@10": c["model"]["recall@10"], "cold_recall@10_with_its_mix": c["model_with_neighbour_mix"]["recall@10"],
                "median_rank_among_new": c["median_rank_among_new"],
                "valid_ndcg@10_with_its_prior": max(g["valid_ndcg@10"] for g in m["new_item_prior"]["sweep"]
                                                    if abs(g["offset"] - m["new_item_prior"]["offset"]) < 1e-6),
                "prior": m["new_item_prior"]["offset"],
                "cold_recall@10_with_its_prior": c["model_with_prior"]["recall@10"],
                "best_valid_new_target_recall@10_within_floor": max(g["valid_new_target_recall@10"] for g in sweep if g["valid_ndcg@10"] >= floor),
                **first_lifting_offset(m["new_item_prior"]["sweep"])}
    a, b = figures(base), figures(other)
    adopted = b["valid_ndcg@10"] >= 0.98 * a["valid_ndcg@10"] and \
        b["best_valid_new_target_recall@10_within_floor"] > a["best_valid_new_target_recall@10_within_floor"]
    return {"run": run, "what": what, "seed": base["cold_start"]["seed"], "base": a, "changed": b, "adopted": adopted,
            "rule": "adopted when validation NDCG@10 over every user stays >= 0.98 x the report's run and the validation "
                    "new-target Recall@10 of the best mix within the 0.98 floor rises"}


def ablation_note(x):
    """What a reader should not misread in an ablation's table (empty: nothing)."""
    a, b = x["base"], x["changed"]
    if x["run"] == "transductive-iddrop0-" and b["valid_ndcg@10_with_its_prior"] > 1.1 * b["valid_ndcg@10"]:
        return [f"Its new items come out over-ranked: with no ID their text-only vectors score above the trained items', so the "
                f"unmixed test Recall@10 of the cold-start users ({b['cold_recall@10']:.4f}) is bought with every test user's NDCG@10 "
                f"({b['test_ndcg@10']:.4f}, {b['test_ndcg@10'] / a['test_ndcg@10']:.2f}× the report's run). Validation corrects them "
                f"with a prior of {b['prior']:g}, which brings validation NDCG@10 to {b['valid_ndcg@10_with_its_prior']:.4f} "
                f"({b['valid_ndcg@10_with_its_prior'] / a['valid_ndcg@10']:.3f}× the report's run) and finds no new target on the "
                "test.", ""]
    if x["run"] == "transductive-iddrop0.5" and \
            abs(b["valid_ndcg@10_with_its_prior"] - b["valid_ndcg@10"]) < 0.005 * b["valid_ndcg@10"]:
        more = b["best_valid_new_target_recall@10_within_floor"] > a["best_valid_new_target_recall@10_within_floor"]
        return [f"Its prior moves validation NDCG@10 by less than 0.5 %: ID dropout trained the over-ranking of ID-less items away. "
                f"What it costs is every user's NDCG@10 (validation {b['valid_ndcg@10']:.4f}, "
                f"{b['valid_ndcg@10'] / a['valid_ndcg@10']:.3f}× the report's run)"
                + (f"; its mix finds more validation new targets within its own floor "
                   f"({b['best_valid_new_target_recall@10_within_floor']:.4f} against "
                   f"{a['best_valid_new_target_recall@10_within_floor']:.4f}), from a lower every-user NDCG@10." if more else
                   ", and its mix finds no more validation new targets within the floor than the report's run."), ""]
    if x["run"] == "inductive-poplogits" and b["best_valid_new_target_recall@10_within_floor"] == 0:
        lift = (f" Its prior does: the first offset that finds one, +{b['first_lifting_offset']:g}, finds "
                f"{b['first_lifting_valid_new_target_recall@10']:.4f} of them at {b['first_lifting_valid_ndcg@10_ratio']:.3f}× the "
                "sweep's best validation NDCG@10" + (f", and the prior chosen (+{b['prior']:g}) finds "
                f"{b['cold_recall@10_with_its_prior']:.4f} of the test's cold-start users on this one seed."
                if b["cold_recall@10_with_its_prior"] > 0 else ".") if "first_lifting_offset" in b else "")
        return [f"It keeps every user's NDCG@10 (validation {b['valid_ndcg@10'] / a['valid_ndcg@10']:.3f}× the report's run), but "
                "at the popularity its text suggests a new item still sits below the popular trained items it competes with for "
                "a place, and no neighbour mix within the floor brings a validation new target into the top 10." + lift +
                " What the text path lacks for new items is their popularity; the catalogue's figures supply it (the popularity "
                "lift above) without a training flag that bundles cannot carry.", ""]
    return []


def ablation_lines(x):
    a, b = x["base"], x["changed"]
    row = lambda name, key, d=4: f"| {name} | {a[key]:.{d}f} | {b[key]:.{d}f} |"
    return [f"**Tried and {'adopted' if x['adopted'] else 'not adopted'}: {x['what']}** (seed {x['seed']}; {x['rule']}).", "",
            "| | the report's run | changed |", "|---|---|---|",
            f"| best epoch | {a['best_epoch']} | {b['best_epoch']} |",
            row("validation NDCG@10, every user", "valid_ndcg@10"),
            row("validation Recall@10 of the users whose target is new, best mix within the floor", "best_valid_new_target_recall@10_within_floor"),
            row("test NDCG@10, every user", "test_ndcg@10"),
            row("test Recall@10 of the cold-start users, unmixed", "cold_recall@10"),
            row("the same with the run's chosen mix", "cold_recall@10_with_its_mix"),
            f"| the run's new-item prior, chosen on validation | {a['prior']:.4g} | {b['prior']:.4g} |",
            row("validation NDCG@10, every user, with that prior", "valid_ndcg@10_with_its_prior"),
            row("test Recall@10 of the cold-start users with that prior", "cold_recall@10_with_its_prior"),
            row("median rank of the target among the new items", "median_rank_among_new", 1)]


def quality_entry(cs):
    """reports/quality.json's `cold_start` from reports/coldstart.json's summary `cs`."""
    q = {"recall@10": cs["recall@10"]["mean"], "recall@10_stdev": cs["recall@10"]["stdev"],
         "random_recall@10": cs["random_recall@10"], "popularity_recall@10": cs["popularity_recall@10"]["mean"],
         "median_rank_among_new": cs["median_rank_among_new"]["mean"],
         "popularity_median_rank_among_new": cs["popularity_median_rank_among_new"]["mean"],
         "random_median_rank_among_new": cs["random_median_rank_among_new"], "seeds": cs["seeds"],
         "source": "reports/coldstart.json"}
    if "neighbour_mix" in cs:
        # The product applies the mix: the headline is the model with it, the unmixed beside.
        q["unmixed_recall@10"], q["unmixed_recall@10_stdev"] = q["recall@10"], q["recall@10_stdev"]
        q["recall@10"] = cs["neighbour_mix"]["recall@10"]["mean"]
        q["recall@10_stdev"] = cs["neighbour_mix"]["recall@10"]["stdev"]
        q["with"] = "the neighbour mix chosen on validation (what the recommend path applies)"
    if "popularity_lift" in cs:
        # With the catalogue's popularity figures the recommend path also lifts new items.
        lift = cs["popularity_lift"]
        q["mix_recall@10"], q["mix_recall@10_stdev"] = q["recall@10"], q["recall@10_stdev"]
        q["recall@10"] = lift["recall@10"]["mean"]
        q["recall@10_stdev"] = lift["recall@10"]["stdev"]
        q["with"] = ("the neighbour mix and the catalogue-popularity lift chosen on validation (what the recommend path "
                     "applies to a catalogue with popularity figures)")
        q["median_rank_among_new_with_lift"] = lift["median_rank_among_new"]["mean"]
        q["new_arrivals_hit@10_with_lift"] = lift["pooled_new_arrivals_hit@10"]
        q["full_catalogue_test_ndcg@10_with_lift"] = lift["full_catalogue_test_ndcg@10"]["mean"]
        q["unmixed_full_catalogue_test_ndcg@10"] = cs["full_catalogue_test_ndcg@10"]["mean"]
    if "catalogue_popularity" in cs:
        cp = cs["catalogue_popularity"]
        q["catalogue_popularity_recall@10"] = cp["recall@10"]["mean"]
        q["catalogue_popularity_full_catalogue_test_ndcg@10"] = cp["full_catalogue_test_ndcg@10"]["mean"]
        q["catalogue_popularity_median_rank_among_new"] = cp["median_rank_among_new"]["mean"]
    if "median_rank_among_new" in cs.get("neighbour_mix", {}):
        # The product's new-arrivals shelf orders new items by the mix.
        q["median_rank_among_new_with_mix"] = cs["neighbour_mix"]["median_rank_among_new"]["mean"]
        q["new_arrivals_hit@10_with_mix"] = cs["neighbour_mix"]["pooled_new_arrivals_hit@10"]
    for policy in ("neighbour_mix", "new_item_prior", "new_arrivals", "popularity_lift"):
        if policy in cs:
            x = cs[policy]
            q[policy] = {"recall@10": x["recall@10"]["mean"], "recall@10_stdev": x["recall@10"]["stdev"],
                         "full_catalogue_test_ndcg@10": x["full_catalogue_test_ndcg@10"]["mean"],
                         "chosen": x.get("chosen", x.get("offsets", x.get("slots")))}
    return q


def quality_line(c):
    """reports/quality.md's cold-start paragraph from quality.json's `cold_start` `c`."""
    m = c.get("neighbour_mix")
    mixed = ""
    if m:
        ch = m["chosen"]
        mixed = (f" with the neighbour mix chosen on validation (own share {ch['own']:g}, {ch['neighbours']} nearest trained items; "
                 f"unmixed {c['unmixed_recall@10']:.4f} ± {c['unmixed_recall@10_stdev']:.4f})")
    if "mix_recall@10" in c:
        ch = c["popularity_lift"]["chosen"]
        mixed = (f" with the neighbour mix (own share {m['chosen']['own']:g}, {m['chosen']['neighbours']} nearest trained items) and the "
                 f"catalogue-popularity lift ({ch['offset']:g} + {ch['weight']:g}·q) chosen on validation (the mix alone "
                 f"{c['mix_recall@10']:.4f} ± {c['mix_recall@10_stdev']:.4f}; unmixed {c['unmixed_recall@10']:.4f} ± "
                 f"{c['unmixed_recall@10_stdev']:.4f}; NDCG@10 over every test user {c['full_catalogue_test_ndcg@10_with_lift']:.4f} "
                 f"against {c['unmixed_full_catalogue_test_ndcg@10']:.4f} unmixed)")
    return (f"**Cold start** ([coldstart.md](coldstart.md), seeds {c['seeds']}): Recall@10 over the whole catalogue{mixed} "
            f"{c['recall@10']:.4f} ± {c['recall@10_stdev']:.4f} against {c['random_recall@10']:.4f} at random "
            f"({c['recall@10'] / c['random_recall@10']:.1f}×; target ≥ 5×) and {c['popularity_recall@10']:.4f} for popularity; "
            f"median rank of the target among the new items {c['median_rank_among_new']:.1f} (popularity "
            f"{c['popularity_median_rank_among_new']:.1f}, random {c['random_median_rank_among_new']:.1f})."
            + (f" By the mix's vectors, the order of the new-arrivals shelf (`<ranklet-shelf only=\"new\">`) over a catalogue "
               f"without popularity figures: median rank {c['median_rank_among_new_with_mix']:.1f}, the target among its first 10 "
               f"for {c['new_arrivals_hit@10_with_mix']:.3f} of the cold-start users." if "median_rank_among_new_with_mix" in c else "")
            + (f" With the lift (a catalogue with figures): median rank {c['median_rank_among_new_with_lift']:.1f}, among the "
               f"first 10 for {c['new_arrivals_hit@10_with_lift']:.3f}." if "median_rank_among_new_with_lift" in c else ""))


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    runs = json.load(open(sys.argv[1]))["models"]
    out = summary(runs,
                  "ml-100k, inductive (text only), --holdout-items 0.1 --holdout-valid-items 0.05 per seed (10 % of the items held out for the test, "
                  "5 % more for the validation: none of them in training), leave-one-out; test users whose target is a test held-out item",
                  "./build.sh report-coldstart")
    # argv[2]: the ablation runs (one seed each), when they were run.
    if len(sys.argv) > 2 and os.path.exists(sys.argv[2]):
        out["ablations"] = []
        for changed in json.load(open(sys.argv[2]))["models"]:
            base = next(m for m in runs if m["cold_start"]["seed"] == changed["cold_start"]["seed"])
            run, what = next((prefix, w) for prefix, w in ABLATIONS if changed["name"].startswith(prefix))
            out["ablations"].append(ablation(base, changed, what, run))
    write_atomic("reports/coldstart.json", json.dumps(out, indent=2))
    lines = ["# Cold start: items never seen in training", "",
             "Regenerate: `./build.sh report-coldstart` (the 2-core development machine). " + out["protocol"] + f"; seeds {out['seeds']}, "
             f"test users per seed {out['test_users']}, {out['held_out_items']} held-out items of 1 682. Mean ± standard deviation over the seeds.", "",
             *table(out), "",
             *(["**The new-item prior.** A new item's score comes from its text alone, while the trained items' scores carry what training "
                "learnt about them, above all how often they are chosen: the model orders new items well among themselves and badly against "
                "the rest. The prior is one cosine added to every new item's score, chosen per seed on the validation users ("
                + ", ".join(str(n) for n in out["new_item_prior"]["valid_users_with_a_new_target"]) + " of them have a validation new "
                "item as their target), never on the test, over the catalogue validation could target: without the test-held items, "
                "whose validation examples left with them (a policy that lifted them paid for it there and found nothing; every "
                "policy of this report is chosen so), by the rule the other policies are held to: the most validation new-item "
                "targets found while NDCG@10 over every validation user stays at least 0.98 × the best offset's (the best, not offset "
                "0's, because an offset can raise NDCG too: where new items come out over-ranked it corrects them first). It leaves the "
                "order among the new items as it was.", "", *prior_table(out), "",
                *sweep_table(out), "", *arrivals_table(out), "", *mix_table(out), "", *lift_table(out), ""]
               if out.get("new_item_prior") else []),
             *[l for x in out.get("ablations", []) for l in [*ablation_lines(x), "", *ablation_note(x)]],
             "Popularity cannot rank an item it never saw: every new item has no training interaction, so its order among them is the "
             "catalogue's (in ml-100k, older and better-known films have lower ids, so that order is not random). The whole-catalogue figure asks a new item to beat about 1 500 items the model was trained on."]
    write_atomic("reports/coldstart.md", "\n".join(lines) + "\n")
    # reports/quality.json and .md carry the cold-start figures.
    if os.path.exists("reports/quality.json"):
        q = json.load(open("reports/quality.json"))
        q["cold_start"] = quality_entry(out)
        write_atomic("reports/quality.json", json.dumps(q, indent=2))
        md = open("reports/quality.md").read()
        old = [l for l in md.split("\n") if l.startswith("**Cold start**")]
        line = quality_line(q["cold_start"])
        write_atomic("reports/quality.md", md.replace(old[0], line) if old else md.rstrip("\n") + "\n\n" + line + "\n")
