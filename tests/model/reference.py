"""Slow, plain-Python reference of the per-patient model (the STUMPY ``naive.py`` idea).

Written from the model description (DESIGN.md section 2 and the parameter file),
with its own pure-integer implementation of the counter-based generator, so that
agreement with the numba kernel checks both the generator and the trajectory
logic. It reads the same :class:`simulator.model.simulation.ModelArrays`.
"""

from __future__ import annotations

import copy
import math

from simulator.model import kernel as K

M64 = (1 << 64) - 1


def mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


G = 0x9E3779B97F4A7C15


def patient_key(seed: int, patient: int) -> int:
    return mix64(mix64((seed * G + 1) & M64) ^ ((patient * G + 2) & M64))


def draw(key: int, stream: int) -> float:
    return ((mix64(key ^ ((stream * G + 3) & M64)) >> 11) + 0.5) / 2.0**53


def uniform(seed: int, patient: int, stream: int) -> float:
    return draw(patient_key(seed, patient), stream)


def expit(x: float) -> float:
    try:
        return 1.0 / (1.0 + math.exp(-x))
    except OverflowError:  # numba's exp gives inf here
        return 0.0


class Patient:
    """One virtual patient; ``run()`` returns the record as a dict of field name -> value."""

    def __init__(self, seed, pid, arrays):
        self.seed, self.pid, self.a = seed, pid, arrays
        self.key = patient_key(seed, pid)
        self.p = dict(zip(K.PARAMETER_NAMES, arrays.par))
        self.tp = dict(zip(K.COMPARATOR_PARAMETER_NAMES, arrays.tpar))

    def u(self, stream):
        return draw(self.key, stream)

    def uc(self, cycle, k):
        return self.u(K.CYCLE_STREAM_BASE + cycle * K.CYCLE_STREAM_STRIDE + k)

    def covariates(self):
        a = self.a
        u = self.u(K.S_COHORT)
        cum_w = list(a.pop[:, K.POP_WEIGHT_CUM])
        k = next((i for i, w in enumerate(cum_w[:-1]) if u < w), len(cum_w) - 1)
        self.k = k
        pop = a.pop[k]
        table = a.age_table[k]
        x = self.u(K.S_AGE) * (len(table) - 1)
        j = min(int(x), len(table) - 2)
        self.age = table[j] + (x - j) * (table[j + 1] - table[j])
        self.salvage2 = self.u(K.S_SALVAGE) < pop[K.POP_SALVAGE2]
        self.prior = self.u(K.S_PRIOR) < pop[K.POP_PRIOR_HSCT]
        self.ph = self.u(K.S_PH) < pop[K.POP_PH]
        u, v = self.u(K.S_BLAST_CAT), self.u(K.S_BLAST_VAL)
        if u < pop[K.POP_BLASTS_LT50]:
            self.blasts = 5.0 + 45.0 * v
        elif u < pop[K.POP_BLASTS_LT50] + pop[K.POP_BLASTS_50_90]:
            self.blasts = 50.0 + 40.0 * v
        else:
            self.blasts = 90.0 + 10.0 * v
        self.bili = self.u(K.S_BILI) < pop[K.POP_BILI]
        logit = (pop[K.POP_ELIG_LOGIT40] + pop[K.POP_ELIG_SLOPE] * (self.age - 40.0) / 10.0
                 + self.p["eligibility_log_odds_shift"] + self.p["hsct_prior_hsct"] * self.prior)
        self.eligible = self.u(K.S_ELIG) < expit(logit)
        u = self.u(K.S_SENS)
        self.z = math.log(u / (1.0 - u)) * (math.sqrt(3.0) / math.pi)
        fu = a.fu[k]
        self.censor = (fu[0] + fu[1] * self.u(K.S_CENSOR)) * K.MONTH

    def exp_time(self, stream, rate_per_month, start=0.0):
        if rate_per_month <= 0:
            return math.inf
        return start + -math.log(self.u(stream)) / (rate_per_month / K.MONTH)

    def relapse_rate(self, mrd_negative):
        p = self.p
        return p["relapse_rate_remission"] * (1.0 if mrd_negative else math.exp(p["relapse_mrd_positive"]))

    def relapse_days(self, hazard, rate_per_month, since_months):
        """Days until ``hazard`` more accrues on the Weibull relapse clock (rate * months**shape since CR)."""
        if rate_per_month <= 0:
            return math.inf
        k = self.p["relapse_shape"]
        return K.MONTH * ((hazard / rate_per_month + since_months**k) ** (1.0 / k) - since_months)

    def relapse_hazard(self, rate_per_month, start, end, response_day):
        """Relapse hazard accrued from ``start`` to ``end`` (days), the clock started at ``response_day``."""
        k = self.p["relapse_shape"]
        return rate_per_month * (((end - response_day) / K.MONTH) ** k - ((start - response_day) / K.MONTH) ** k)

    def weibull_time(self, stream, rate, shape):
        """Days until an event with cumulative hazard rate * months**shape."""
        if rate <= 0:
            return math.inf
        return K.MONTH * (-math.log(self.u(stream)) / rate) ** (1.0 / shape)

    def cause_after_progression(self):
        share = self.p["death_after_progression_disease_share"]
        return K.CAUSE_PROGRESSION if self.u(K.S_DEATH_CAUSE) < share else K.CAUSE_OTHER

    def sos_grade(self, u):
        p = self.p
        if u < p["sos_fatal_prob"]:
            return K.SOS_FATAL
        return K.SOS_SEVERE if u < p["sos_severe_prob"] else K.SOS_MILD

    def run(self):
        self.covariates()
        p, a, k = self.p, self.a, self.k
        reg = a.reg[k]
        high_blasts = self.blasts > 90.0
        decades = (self.age - K.REFERENCE_AGE) / 10.0
        resp_lp = (p["resp_sensitivity_sd"] * self.z + p["resp_blasts_over_90"] * high_blasts
                   + p["resp_salvage2"] * self.salvage2 + p["resp_ph_positive"] * self.ph)
        sos_lp = (p["sos_age_per_decade"] * decades + p["sos_prior_hsct"] * self.prior
                  + p["sos_bilirubin_high"] * self.bili + p["sos_salvage2"] * self.salvage2)
        pd_rate = p["progression_rate_refractory"] * math.exp(
            p["progression_blasts_over_90"] * high_blasts - p["progression_resistance"] * self.z)
        t_pd = self.exp_time(K.S_PD, pd_rate)
        t_other = self.exp_time(K.S_OTHER, p["death_rate_other"])

        first, then = int(reg[K.REG_TREATMENT]), int(reg[K.REG_THEN])
        st = self.fresh()
        t_end, t_pd_after = self.treat(st, first, resp_lp, sos_lp, t_pd, t_other)
        died_on_treatment = st["death"] < math.inf
        self.after_treatment(st, t_end, t_pd_after, t_other)
        st["then_start"], st["then_cr"] = math.inf, False
        prog = st["prog"]
        if (then != K.NO_TREATMENT and prog < math.inf and not died_on_treatment and not st["hsct_in_cr"]
                and t_other > prog):
            self.next_line(st, first, then, prog, resp_lp, sos_lp, decades, pd_rate, t_other)
        else:
            self.after_transplant(st, t_other, sos_lp, decades)
        return self.record(st, t_end)

    @staticmethod
    def fresh():
        return dict(cum=0.0, n_given=0, cycles=0, in_cr=False, mrd=False, resp_cycle=0,
                    resp_day=math.inf, rel_e=0.0, rel_h=0.0, reduced=False, g3=False, sae=False,
                    disc=False, sos=0, grade=0, sos_post=0, sos_post_grade=0, death=math.inf, cause=0,
                    prog=math.inf, hsct=math.inf, last_dose=0.0, relapse_post_hsct=math.inf, crs=0, neuro=False,
                    stage=0)

    def treat(self, st, treatment, resp_lp, sos_lp, t_pd, t_other):
        """The treatment's course from day 0: ``(day it ended, day refractory disease progresses after it)``."""
        if treatment == K.TREAT_CHEMO:
            return self.chemo(st, resp_lp, t_pd, t_other)
        if treatment == K.TREAT_BLINA:
            return self.blina(st, resp_lp, t_pd, t_other)
        if treatment == K.TREAT_CART:
            return self.cart(st, resp_lp, t_pd, t_other)
        return self.ino(st, resp_lp, sos_lp, t_pd, t_other), t_pd

    def next_line(self, st, first, then, start, resp_lp, sos_lp, decades, pd_rate, t_other):
        """The next treatment from the first progression on day ``start``: the same patient on a
        clock restarted there, in later salvage, with its own draws; merged into ``st``."""
        line = copy.copy(self)
        line.key = mix64(self.key ^ K.NEXT_LINE_SALT)
        line.salvage2 = True
        line.censor = self.censor - start
        resp2 = (resp_lp + (0.0 if self.salvage2 else self.p["resp_salvage2"])
                 + self.tp[f"next_response_after_{K.TREATMENTS[first]}"])
        t_pd2 = line.exp_time(K.S_PD, pd_rate)
        t_other2 = t_other - start
        st2 = self.fresh()
        t_end2, t_pd2_after = line.treat(st2, then, resp2, sos_lp, t_pd2, t_other2)
        line.after_treatment(st2, t_end2, t_pd2_after, t_other2)
        line.after_transplant(st2, t_other2, sos_lp, decades)
        st.update(death=start + st2["death"], cause=st2["cause"], hsct=start + st2["hsct"],
                  hsct_in_cr=st2["hsct_in_cr"], relapse_post_hsct=start + st2["relapse_post_hsct"],
                  sos_post=st2["sos_post"], sos_post_grade=st2["sos_post_grade"],
                  grade=max(st["grade"], st2["sos_post_grade"]), sos=int(st["sos"] or st2["sos_post"]),
                  then_start=start, then_cr=st2["in_cr"] and st2["resp_day"] <= line.censor)

    @staticmethod
    def ended_by(st, first, t_fatal, t_other, t_disease):
        """Treatment cut short by its first event ``first``: death from toxicity or other causes, or
        progression (relapse) of the disease."""
        if first == t_fatal:
            st["death"], st["cause"] = t_fatal, K.CAUSE_TOXICITY
        elif first == t_other:
            st["death"], st["cause"] = t_other, K.CAUSE_OTHER
        else:
            st["prog"] = t_disease

    def ino(self, st, resp_lp, sos_lp, t_pd, t_other):
        """InO cycles from day 0; returns the day treatment ended."""
        p, a, k = self.p, self.a, self.k
        reg = a.reg[k]
        start = t_end = 0.0
        for c in range(1, int(reg[K.REG_MAX_CYCLES]) + 1):
            if c == 1:
                kind = K.KIND_CYCLE1
            else:
                kind = K.KIND_IN_CR if st["in_cr"] else K.KIND_NOT_IN_CR
            scale = 1.0 - reg[K.REG_REDUCTION] if st["reduced"] else 1.0
            if st["in_cr"]:
                rate_on = self.relapse_rate(st["mrd"]) * math.exp(p["relapse_on_treatment"])
                t_disease = start + self.relapse_days(st["rel_e"] - st["rel_h"], rate_on,
                                                      (start - st["resp_day"]) / K.MONTH)
            else:
                t_disease = t_pd
            given = 0.0
            capped = False
            for q in range(a.n_doses[k, kind]):
                dose = a.doses[k, kind, q] * scale
                day = start + a.days[k, kind, q] - 1.0
                if dose <= 0.0:
                    continue
                if day >= t_other or day >= t_disease:
                    break
                if q > 0 and self.uc(c, q) < p["dose_omission_prob"]:
                    continue
                if st["cum"] + dose > reg[K.REG_CAP] + K.DOSE_EPS:
                    capped = True
                    break
                st["cum"] += dose
                given += dose
                st["n_given"] += 1
                st["last_dose"] = day
            if given <= 0.0:
                t_end = start
                break
            st["cycles"] = c
            ld = math.log(given / K.REFERENCE_CYCLE_DOSE)
            g3_int = p["g3ae_intercept_cycle1"] if c == 1 else p["g3ae_intercept_later"]
            g3 = self.uc(c, K.K_G3) < expit(g3_int + p["g3ae_dose_slope"] * ld)
            length = reg[K.REG_LEN_C1] if c == 1 else reg[K.REG_LEN_LATER]
            if g3:
                st["g3"] = True
                length += 2.0 * p["cycle_delay_mean_days"] * self.uc(c, K.K_DELAY)
            end = start + length
            sae_int = p["sae_intercept_cycle1"] if c == 1 else p["sae_intercept_later"]
            sae = self.uc(c, K.K_SAE) < expit(sae_int + p["sae_not_in_remission"] * (not st["in_cr"])
                                              + p["sae_dose_slope"] * ld)
            responds = False
            if not st["in_cr"]:
                intercept = [p["resp_intercept_cycle1"], p["resp_intercept_cycle2"],
                             p["resp_intercept_cycle3plus"]][min(c, 3) - 1]
                responds = self.uc(c, K.K_RESPONSE) < expit(intercept + p["resp_dose_slope"] * ld + resp_lp)
                if responds and c == 1:
                    end += reg[K.REG_C1_EXTENSION] * self.uc(c, K.K_EXTENSION)
            t_fatal = math.inf
            if sae:
                st["sae"] = True
                if self.uc(c, K.K_FATAL) < p["fatal_toxicity_given_sae"]:
                    last = st["last_dose"]
                    t_fatal = last + (end - last) * self.uc(c, K.K_FATAL_T)
            first = min(t_other, t_disease, t_fatal)
            if first < end:
                t_end = first
                self.ended_by(st, first, t_fatal, t_other, t_disease)
                break
            if st["in_cr"]:
                st["rel_h"] += self.relapse_hazard(rate_on, start, end, st["resp_day"])
            mrd_p = expit(p["mrd_intercept"] + p["mrd_dose_slope"] * ld)
            if responds:
                st.update(in_cr=True, resp_cycle=c, resp_day=end)
                st["mrd"] = self.uc(c, K.K_MRD) < mrd_p
                st["rel_e"], st["rel_h"] = -math.log(self.u(K.S_RELAPSE)), 0.0
            elif st["in_cr"] and not st["mrd"]:
                st["mrd"] = self.uc(c, K.K_MRD) < mrd_p
            stop = False
            if self.uc(c, K.K_SOS) < expit(p["sos_intercept_treatment"]
                                           + p["sos_cumulative_dose_slope"] * st["cum"] + sos_lp):
                st.update(sos=1, disc=True)
                stop = True
                st["grade"] = self.sos_grade(self.uc(c, K.K_SOS_GRADE))
                if st["grade"] == K.SOS_FATAL:
                    t_end = end
                    lag = p["sos_death_mean_days"] * -math.log(self.uc(c, K.K_SOS_DEATH))
                    st["death"], st["cause"] = end + lag, K.CAUSE_TOXICITY
                    break
            if g3:
                if self.uc(c, K.K_DISC) < expit(p["discontinue_intercept"] + p["discontinue_cumulative_slope"]
                                                * (st["cum"] - K.REFERENCE_CYCLE_DOSE)):
                    st["disc"] = True
                    stop = True
                if self.uc(c, K.K_REDUCE) < p["dose_reduction_given_g3ae"]:
                    st["reduced"] = True
            t_end = end
            if st["in_cr"] and self.eligible:
                needed = reg[K.REG_HSCT_CYCLES] + (1 if reg[K.REG_HSCT_EXTRA_MRD] > 0 and not st["mrd"] else 0)
                if c >= needed and self.uc(c, K.K_HSCT_GO) < p["hsct_proceed_prob"]:
                    st["hsct"] = end + p["hsct_wait_mean_days"] * -math.log(self.u(K.S_HSCT_WAIT))
                    break
            if stop or capped or (not st["in_cr"] and c >= reg[K.REG_STOP_AFTER]):
                break
            start = end
        return t_end

    def chemo(self, st, resp_lp, t_pd, t_other):
        """One standard-chemotherapy course from day 0; returns the day it ended and the
        day refractory disease progresses after it."""
        p, tp = self.p, self.tp
        end = tp["chemo_course_days"]
        t_prog = t_pd * math.exp(-tp["chemo_progression_log_hr"])
        fatal = self.u(K.CH_FATAL) < tp["chemo_fatal_toxicity"]
        t_fatal = end * self.u(K.CH_FATAL_T) if fatal else math.inf
        responds = self.u(K.CH_RESPONSE) < expit(tp["chemo_response_intercept"] + resp_lp)
        st.update(cycles=1, last_dose=-math.inf, sae=fatal)
        first = min(t_other, t_prog, t_fatal)
        if first < end:
            self.ended_by(st, first, t_fatal, t_other, t_prog)
            return first, t_prog
        if responds:
            st.update(in_cr=True, resp_cycle=1, resp_day=end)
            st["mrd"] = self.u(K.CH_MRD) < expit(tp["chemo_mrd_intercept"])
            st["rel_e"] = -math.log(self.u(K.S_RELAPSE)) * math.exp(-tp["chemo_relapse_log_hr"])
            if self.eligible and self.u(K.CH_HSCT_GO) < tp["chemo_hsct_prob"]:
                st["hsct"] = end + p["hsct_wait_mean_days"] * -math.log(self.u(K.S_HSCT_WAIT))
        return end, t_prog

    def blina(self, st, resp_lp, t_pd, t_other):
        """Blinatumomab cycles from day 0 (TOWER); returns the day treatment ended and the day
        refractory disease progresses after it."""
        p, tp = self.p, self.tp
        k = p["relapse_shape"]

        def uc(c, j):
            return self.u(K.BLINA_STREAM_BASE + 8 + (c - 1) * K.BLINA_CYCLE_STREAMS + j)

        t_prog = t_pd * math.exp(-tp["blina_progression_log_hr"])
        if self.u(K.BL_CRS) < tp["blina_crs_prob"]:
            st["crs"] = K.GRADE_SEVERE if self.u(K.BL_CRS_GRADE) < tp["blina_crs_severe_share"] else K.GRADE_MILD
        st["neuro"] = self.u(K.BL_NEURO) < tp["blina_neurologic_prob"]
        st["last_dose"] = -math.inf
        p_resp = expit(tp["blina_response_intercept"] + tp["blina_blasts_per_10"] * (self.blasts - 50.0) / 10.0
                       + resp_lp)
        t_rel, rate, start = math.inf, 0.0, 0.0
        for c in range(1, K.BLINA_MAX_CYCLES + 1):
            end = start + K.BLINA_CYCLE_DAYS
            st["cycles"] = c
            t_fatal = math.inf
            if uc(c, K.BL_FATAL) < tp["blina_fatal_toxicity"]:
                t_fatal = start + K.BLINA_INFUSION_DAYS * uc(c, K.BL_FATAL_T)
                st["sae"] = True
            t_disease = t_rel if st["in_cr"] else t_prog
            first = min(t_other, t_disease, t_fatal)
            if first < end:
                self.ended_by(st, first, t_fatal, t_other, t_disease)
                return first, t_prog
            if not st["in_cr"]:
                if uc(c, K.BL_RESPONSE) < p_resp:
                    st.update(in_cr=True, resp_cycle=c, resp_day=end)
                    st["mrd"] = self.u(K.BL_MRD) < expit(tp["blina_mrd_intercept"])
                    st["rel_e"] = -math.log(self.u(K.S_RELAPSE)) * math.exp(-tp["blina_relapse_log_hr"])
                    rate = self.relapse_rate(st["mrd"])
                    t_rel = end + self.relapse_days(st["rel_e"], rate, 0.0)
                    if self.eligible and self.u(K.BL_HSCT_GO) < tp["blina_hsct_prob"]:
                        st["hsct"] = end + p["hsct_wait_mean_days"] * -math.log(self.u(K.S_HSCT_WAIT))
                        return end, t_prog
                elif c == K.BLINA_INDUCTION_CYCLES:
                    return end, t_prog
            start = end
        st["rel_h"] = rate * (((start - st["resp_day"]) / K.MONTH) ** k - 0.0 ** k)
        return start, t_prog

    def cart(self, st, resp_lp, t_pd, t_other):
        """Brexucabtagene autoleucel from leukapheresis on day 0 (ZUMA-3); returns the day the
        course ended and the day refractory disease progresses after it."""
        p, tp = self.p, self.tp
        v = tp["cart_vein_to_vein_days"]
        st["last_dose"] = -math.inf
        manufactured = self.u(K.CT_MANUFACTURED) >= tp["cart_manufacturing_failure"]
        dropout = self.u(K.CT_DROPOUT) < tp["cart_dropout"] or (
            t_pd < v and self.u(K.CT_DROPOUT_PD) < tp["cart_dropout_after_progression"])
        if not manufactured or dropout or t_other < v:
            st["stage"] = K.CART_MANUFACTURED if manufactured else K.CART_APHERESIS
            return v, t_pd
        st.update(stage=K.CART_INFUSED, cycles=1)
        if self.u(K.CT_CRS) < tp["cart_crs_prob"]:
            st["crs"] = K.GRADE_SEVERE if self.u(K.CT_CRS_GRADE) < tp["cart_crs_severe_share"] else K.GRADE_MILD
        fatal = self.u(K.CT_FATAL) < tp["cart_fatal_toxicity"]
        st["sae"] = fatal
        st["neuro"] = self.u(K.CT_NEURO) < tp["cart_neurologic_prob"]
        t_fatal = v + K.CART_TOXICITY_DAYS * self.u(K.CT_FATAL_T) if fatal else math.inf
        assessed = v + tp["cart_response_days"]
        if min(t_other, t_fatal) < assessed:
            if t_fatal < t_other:
                st["death"], st["cause"] = t_fatal, K.CAUSE_TOXICITY
            else:
                st["death"], st["cause"] = t_other, K.CAUSE_OTHER
            return st["death"], t_pd
        if self.u(K.CT_RESPONSE) >= expit(tp["cart_response_intercept"] + resp_lp):
            return assessed, max(t_pd, assessed)
        st.update(in_cr=True, resp_cycle=1, resp_day=assessed)
        st["mrd"] = self.u(K.CT_MRD) < expit(tp["cart_mrd_intercept"])
        st["rel_e"] = math.inf
        if self.u(K.CT_DURABLE) >= tp["cart_durable_prob"]:
            st["rel_e"] = -math.log(self.u(K.S_RELAPSE)) * math.exp(-tp["cart_relapse_log_hr"])
        if self.eligible and self.u(K.CT_HSCT_GO) < tp["cart_hsct_prob"]:
            st["hsct"] = assessed + p["hsct_wait_mean_days"] * -math.log(self.u(K.S_HSCT_WAIT))
        return assessed, t_pd

    def after_treatment(self, st, t_end, t_pd, t_other):
        p = self.p
        st["hsct_in_cr"] = False
        st["t_rel"] = math.inf
        if st["in_cr"]:
            st["t_rel"] = t_end + self.relapse_days(st["rel_e"] - st["rel_h"], self.relapse_rate(st["mrd"]),
                                                    (t_end - st["resp_day"]) / K.MONTH)
        if st["death"] < math.inf:
            return
        if st["in_cr"] and st["prog"] == math.inf:
            if st["hsct"] == math.inf and self.eligible:
                st["hsct"] = self.exp_time(K.S_HSCT_LATE, p["hsct_late_rate"], t_end)
            if st["hsct"] < min(st["t_rel"], t_other):
                st["hsct_in_cr"] = True
            else:
                st["hsct"] = math.inf
                if t_other < st["t_rel"]:
                    st["death"], st["cause"] = t_other, K.CAUSE_OTHER
                else:
                    st["prog"] = st["t_rel"]
        elif st["prog"] == math.inf:
            if t_other < t_pd:
                st["death"], st["cause"] = t_other, K.CAUSE_OTHER
            else:
                st["prog"] = t_pd
        if st["prog"] < math.inf and st["death"] == math.inf:
            t_dp = self.exp_time(K.S_DEATH_PROG, p["death_rate_after_progression"], st["prog"])
            if self.eligible and self.u(K.S_SALV_HSCT) < p["hsct_salvage_prob"]:
                t_sh = st["prog"] + p["hsct_salvage_mean_days"] * -math.log(self.u(K.S_SALV_HSCT_T))
                if t_sh < min(t_dp, t_other):
                    st["hsct"] = t_sh
            if st["hsct"] == math.inf:
                if t_other < t_dp:
                    st["death"], st["cause"] = t_other, K.CAUSE_OTHER
                else:
                    st["death"], st["cause"] = t_dp, self.cause_after_progression()

    def after_transplant(self, st, t_other, sos_lp, decades):
        p, h = self.p, st["hsct"]
        if h == math.inf:
            return
        reg = self.a.reg[self.k]
        dual = self.u(K.S_DUAL) < reg[K.REG_DUAL_ALKYLATOR]
        logit = (p["sos_intercept_post_hsct"] + p["sos_cumulative_dose_slope"] * st["cum"] + sos_lp
                 + p["sos_short_interval"] * math.exp(-(h - st["last_dose"]) / K.MONTH)
                 + p["sos_dual_alkylator"] * dual)
        t_sos_death = math.inf
        grade = 0
        onset = math.inf
        if self.u(K.S_SOS_POST) < expit(logit):
            grade = self.sos_grade(self.u(K.S_SOS_POST_GRADE))
            u = self.u(K.S_SOS_ONSET)
            onset = h + p["sos_onset_median_days"] * math.exp(p["sos_onset_spread"] * math.log(u / (1.0 - u)))
            if grade == K.SOS_FATAL:
                t_sos_death = onset + p["sos_death_mean_days"] * -math.log(self.u(K.S_SOS_DEATH))
        lp = (p["nrm_age_per_decade"] * decades + p["nrm_cumulative_dose_slope"] * (st["cum"] - K.NRM_REFERENCE_DOSE)
              + p["nrm_prior_hsct"] * self.prior
              + p["nrm_cycles_slope"] * (st["cycles"] - K.NRM_REFERENCE_CYCLES)
              + p["nrm_time_to_hsct_slope"] * (h / K.MONTH - K.NRM_REFERENCE_MONTHS)
              + p["nrm_salvage2"] * self.salvage2 + p["nrm_dual_alkylator"] * dual)
        rate, shape = p["nrm_rate"] * math.exp(lp), p["nrm_shape"]
        t_nrm = math.inf
        if rate > 0:  # cumulative hazard rate * t^shape, times exp(nrm_after_sos) after a non-fatal SOS
            e = -math.log(self.u(K.S_NRM))
            change = (onset - h) / K.MONTH if grade in (K.SOS_MILD, K.SOS_SEVERE) else math.inf
            h_change = rate * change**shape if change < math.inf else math.inf
            if e <= h_change:
                t_nrm = h + K.MONTH * (e / rate) ** (1.0 / shape)
            else:
                factor = math.exp(p["nrm_after_sos"])
                t_nrm = h + K.MONTH * (change**shape + (e - h_change) / (rate * factor)) ** (1.0 / shape)
        mrd_pos = st["hsct_in_cr"] and not st["mrd"]
        rel_rate = p["relapse_rate_post_hsct"] * math.exp(
            p["relapse_post_hsct_mrd_positive"] * mrd_pos + p["relapse_post_hsct_not_in_remission"] * (not st["hsct_in_cr"]))
        t_rh = h + self.weibull_time(K.S_RELAPSE_HSCT, rel_rate, p["relapse_post_hsct_shape"])
        t_nr = min(t_sos_death, t_nrm, t_other)
        if t_nr < t_rh:
            st["death"], st["cause"] = t_nr, K.CAUSE_NRM_POST_HSCT
        else:
            st["relapse_post_hsct"] = t_rh
            st["prog"] = min(st["prog"], t_rh)
            t_dp = self.exp_time(K.S_DEATH_PROG_HSCT, p["death_rate_after_progression"], t_rh)
            if t_other < t_dp:
                st["death"], st["cause"] = t_other, K.CAUSE_OTHER
            else:
                st["death"], st["cause"] = t_dp, self.cause_after_progression()
        if grade > 0 and onset <= min(st["death"], self.censor):
            st.update(sos=1, sos_post=1, sos_post_grade=grade, grade=max(st["grade"], grade))

    def record(self, st, t_end):
        cen, nan, a, k = self.censor, math.nan, self.a, self.k
        seen = lambda t: t if t <= cen else nan  # noqa: E731
        hsct = st["hsct"] <= cen
        cr = st["in_cr"] and st["resp_day"] <= cen
        return {
            "cumulative_dose": st["cum"],
            "starting_dose": float(sum(a.doses[k, K.KIND_CYCLE1, : a.n_doses[k, K.KIND_CYCLE1]])),
            "response_day": seen(st["resp_day"]),
            "hsct_day": st["hsct"] if hsct else nan,
            "progression_day": seen(st["prog"]),
            "death_day": seen(st["death"]),
            "pfs_months": min(st["prog"], st["death"], cen) / K.MONTH,
            "os_months": min(st["death"], cen) / K.MONTH,
            "age": self.age,
            "marrow_blasts": self.blasts,
            "censor_day": cen,
            "relapse_post_hsct_day": seen(st["relapse_post_hsct"]),
            "last_dose_day": st["last_dose"] if st["n_given"] > 0 else nan,
            "treatment_end_day": seen(t_end),
            "then_start_day": seen(st["then_start"]),
            "cohort": k,
            "cycles": st["cycles"],
            "doses_given": st["n_given"],
            "best_response": int(cr),
            "response_cycle": st["resp_cycle"] if cr else 0,
            "mrd_negative": int(st["mrd"] and cr),
            "grade3_ae": int(st["g3"]),
            "serious_ae": int(st["sae"]),
            "discontinued_ae": int(st["disc"]),
            "hsct": int(hsct),
            "sos": st["sos"],
            "sos_grade": st["grade"],
            "sos_post_hsct": st["sos_post"],
            "sos_post_hsct_grade": st["sos_post_grade"],
            "death_cause": st["cause"] if st["death"] <= cen else 0,
            "pfs_event": int(min(st["prog"], st["death"]) <= cen),
            "os_event": int(st["death"] <= cen),
            "salvage": 2 if self.salvage2 else 1,
            "prior_hsct": int(self.prior),
            "ph_positive": int(self.ph),
            "bilirubin_high": int(self.bili),
            "transplant_eligible": int(self.eligible),
            "hsct_in_remission": int(hsct and st["hsct_in_cr"]),
            "treatment": int(a.reg[k, K.REG_TREATMENT]),
            "crs_grade": st["crs"],
            "neurologic_g3": int(st["neuro"]),
            "cart_stage": st["stage"],
            "then_response": int(st["then_cr"]),
        }


def simulate_reference(arrays, seed: int, n: int, first_patient: int = 0) -> list[dict]:
    """Records of patients ``first_patient .. first_patient + n - 1``, one dict each."""
    return [Patient(seed, first_patient + i, arrays).run() for i in range(n)]
