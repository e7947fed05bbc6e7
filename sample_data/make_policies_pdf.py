"""Generate sample_data/policies.pdf ("Studio Policies and Safety Guide").

Usage (fpdf2 is only needed to regenerate the sample PDF):

    python3 -m venv /tmp/pdfvenv && /tmp/pdfvenv/bin/pip install fpdf2
    /tmp/pdfvenv/bin/python sample_data/make_policies_pdf.py

The output is deterministic: the creation date is fixed, so re-running the
script produces the same content. Only latin-1 characters are used because
the PDF uses the built-in core fonts (Helvetica).
"""

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

OUTPUT = Path(__file__).resolve().parent / "policies.pdf"

TITLE = "Studio Policies and Safety Guide"
BUSINESS = "Copper Kiln Pottery Studio"

INTRO = [
    "This guide applies to everyone who uses Copper Kiln Pottery Studio at "
    "214 Alder Street, Millbrook: students, open-studio members, party guests "
    "and customers of our outside firing service. By taking a class, holding a "
    "membership or dropping off work for firing, you agree to follow these "
    "policies. This edition is effective March 1, 2025, and the guide is "
    "reviewed by the studio director every January.",
    "If anything in this guide is unclear, please ask a staff member at the "
    "front desk or call (555) 314-2760 during opening hours.",
]

# Each section: (heading, [paragraphs]). A paragraph starting with "- " is
# rendered as a bullet point.
SECTIONS = [
    (
        "1. General Studio Safety",
        [
            "Ceramics is a safe hobby when a few basic rules are followed. "
            "These rules apply in every work area of the studio, including the "
            "wheel room, the hand-building room and the glaze kitchen.",
            "- Closed-toe shoes must be worn in all work areas at all times. "
            "Sandals and bare feet are not permitted, even in summer.",
            "- Clean up with wet methods only: damp sponges, buckets and the "
            "wet mop. No dry sweeping and no compressed air, because dried clay "
            "and glaze dust contain crystalline silica, which is harmful to "
            "breathe.",
            "- Food is allowed only in the lounge. The only drink permitted in "
            "work areas is water in a bottle with a closed lid.",
            "- Never pour clay slurry, glaze or wheel splash-pan water down a "
            "sink. Empty splash pans into the grey reclaim buckets and rinse "
            "tools in the settling buckets next to the sinks.",
            "- Tie back long hair and remove dangling jewelry before using a "
            "wheel, slab roller or extruder.",
            "- First-aid kits are kept at the front desk and in the glaze "
            "kitchen. An eyewash station is mounted beside the glaze kitchen "
            "sink.",
            "- Report every injury, however minor, to a staff member on the "
            "same day so it can be recorded in the incident log.",
            "- Fire extinguishers are located beside each exit and just inside "
            "the kiln room door. In an emergency, leave the building and gather "
            "at the emergency assembly point on the front steps of the Millbrook "
            "Public Library across the street.",
        ],
    ),
    (
        "2. Kiln Room Access",
        [
            "The kiln room is locked at all times. Only staff members and the "
            "kiln technician hold keys. Students, members and guests may enter "
            "the kiln room only with a staff escort, and children under 16 may "
            "never enter it, even with a parent.",
            "Our kilns reach about 2,230 degrees Fahrenheit during a cone 6 "
            "glaze firing, and the outside of a kiln can be hotter than 500 "
            "degrees Fahrenheit. Never touch kiln lids, lid handles, vents or "
            "the walls of a kiln, whether or not it appears to be firing.",
            "Only staff load and unload the kilns. When your work is ready, "
            "place it on the correct cart outside the kiln room: the green cart "
            "is for pieces ready for bisque firing and the blue cart is for "
            "glazed pieces ready for glaze firing. Pieces left anywhere else "
            "will not be fired.",
            "Bisque firings start on Monday and Thursday nights, and glaze "
            "firings start on Wednesday and Saturday nights. Kilns are unloaded "
            "once they have cooled, usually about 36 hours after a firing starts.",
            "The largest piece our kilns can fire is 18 inches tall and 16 inches "
            "wide. Larger work cannot be accepted from students, members or "
            "firing-service customers.",
        ],
    ),
    (
        "3. Glazing Rules and Kiln Shelf Damage",
        [
            "Melted glaze fuses to kiln shelves and can ruin them, along with "
            "other people's work on the same shelf. To protect everyone:",
            "- Wipe all glaze off the foot of each piece and at least 1/4 inch "
            "up the side from the bottom.",
            "- Apply no more than three coats of any studio glaze, and do not "
            "layer more than two different glazes on the lower half of a piece.",
            "- Pieces glazed on the bottom will be returned to the owner "
            "unfired, with a note asking them to clean the foot.",
            "If glaze from your piece runs onto a kiln shelf, a shelf repair fee "
            "of $35 is charged, because the shelf must be ground down and "
            "re-coated with kiln wash. Our kiln technician decides whether a "
            "shelf repair is needed.",
        ],
    ),
    (
        "4. Glaze Food-Safety Statement",
        [
            "All studio glazes at Copper Kiln are lead-free and are formulated "
            "for cone 6 firing. Each glaze is tested once a year by an "
            "independent ceramics laboratory for leaching. When correctly "
            "applied and fully fired in our kilns, our liner glazes are food "
            "safe, dishwasher safe and microwave safe.",
            "Two studio glazes, Lava Crater and Copper Red Flash, are decorative "
            "only. They are marked with a red dot on their test tiles and "
            "buckets and must not be used on any surface that touches food or "
            "drink, such as the inside of a mug or the top of a plate.",
            "Pieces that show crazing (a fine network of cracks in the glaze) "
            "should not be used for food or drink, because the cracks can hold "
            "bacteria.",
            "For work fired through our outside firing service, the studio does "
            "not certify the food safety of customer-supplied glazes, and it is "
            "the customer's responsibility to test their own glazes.",
        ],
    ),
    (
        "5. Damaged Pieces",
        [
            "Clay is unpredictable. Pieces can crack, warp or even explode in "
            "the kiln, most often because of trapped air pockets, uneven wall "
            "thickness or work that was not completely dry. The studio is not "
            "responsible for damage caused by these natural risks of firing, and "
            "no compensation is given for pieces lost in this way.",
            "If a staff member damages your piece while handling or loading it, "
            "we will give you a studio credit of $15 per damaged piece. Please "
            "tell the front desk within 7 days of being notified that your "
            "work is ready.",
            "For outside firing-service customers, our liability is limited to a "
            "refund of the firing fee charged for the damaged piece.",
        ],
    ),
    (
        "6. Finished Work Pickup and Late Pickup Fees",
        [
            "We send an email when your finished pieces are ready. Please pick "
            "them up at the front desk within 30 days of that email. Shelf space "
            "is limited, so the following rules apply to work that is not "
            "collected on time:",
            "- From day 31, a late pickup fee of $5 per week is charged per "
            "customer (not per piece) until the work is collected.",
            "- Pieces that are still unclaimed 60 days after the ready email "
            "become the property of the studio. They are donated to the Millbrook "
            "Community Thrift Shop or recycled, and no late fees are charged "
            "after that point.",
            "Someone else may pick up work on your behalf if they give the front "
            "desk your full name and your order number.",
        ],
    ),
    (
        "7. Membership Shelf Storage Rules",
        [
            "Every open-studio member is assigned a storage shelf for work in "
            "progress. Each shelf is 24 inches wide and 18 inches deep.",
            "- Label your shelf with your name and member number using the "
            "labels at the front desk.",
            "- Keep work in progress wrapped in plastic and check it at least "
            "once a week. Moldy or unlabeled work may be reclaimed.",
            "- You may store at most 2 bags of clay under your shelf.",
            "- Do not store food, personal chemicals or outside glazes on "
            "member shelves.",
            "Staff carry out a shelf audit on the first Sunday of every month. "
            "Unlabeled items, or items left on the floor or on tables, are moved "
            "to the orphan shelf by the back door for 7 days and are then "
            "reclaimed or discarded.",
            "When a membership ends, the member must clear their shelf within "
            "14 days after the last day of the membership. Anything left after "
            "14 days is reclaimed or donated.",
        ],
    ),
    (
        "8. Code of Conduct",
        [
            "Copper Kiln is a shared community space. We expect everyone to "
            "treat other students, members, guests and staff with respect. "
            "Harassment, discriminatory language and intimidating behavior are "
            "not tolerated.",
            "- Clean your wheel, splash pan, tools and work table before you "
            "leave. Last wheel use is 30 minutes before closing time so the "
            "studio can be cleaned.",
            "- Headphones are welcome. Music may be played on a speaker only if "
            "everyone in the room agrees.",
            "- Alcohol is not permitted in the studio, except at booked private "
            "parties.",
            "- Members may not give paid lessons or sell instruction inside the "
            "studio.",
            "- Children under 16 may not be in the open studio, except when "
            "enrolled in a class.",
            "Breaking the code of conduct leads to a verbal warning for a first "
            "issue, a written warning for a second issue, and suspension of "
            "membership without refund for a third issue. Serious misconduct "
            "may result in immediate removal from the studio.",
        ],
    ),
    (
        "9. Photography and Social Media",
        [
            "Staff may take photos and short videos during classes, parties and "
            "events for our website and social media accounts. If you would "
            "prefer not to be photographed, ask for a blue wristband at the "
            "front desk. Staff will not photograph or film anyone wearing a blue "
            "wristband.",
            "You are welcome to photograph your own work. Please ask before "
            "photographing other people or their work. When you share photos "
            "online, tag us at @copperkilnpottery.",
            "Filming or photography for commercial purposes, such as "
            "advertising or paid content, requires written permission from the "
            "studio director in advance.",
        ],
    ),
    (
        "10. Lost and Found",
        [
            "Lost property is kept in the lost and found bin by the front desk "
            "for 21 days. After 21 days, unclaimed clothing and general items "
            "are donated to the Millbrook Community Thrift Shop.",
            "Valuables such as phones, wallets, keys and jewelry are locked in "
            "the front desk safe and held for 60 days. Valuables that are still "
            "unclaimed after 60 days are handed over to the Millbrook Police "
            "Department.",
            "The studio is not responsible for personal belongings. Please use "
            "the day lockers in the lounge for bags and coats.",
        ],
    ),
]


class PolicyPDF(FPDF):
    def header(self):
        self.set_font("Helvetica", "I", 9)
        self.set_text_color(110, 110, 110)
        self.cell(0, 6, f"{BUSINESS} - {TITLE}", align="L")
        self.ln(10)
        self.set_text_color(0, 0, 0)

    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", "I", 9)
        self.set_text_color(110, 110, 110)
        self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def paragraph(pdf: FPDF, text: str) -> None:
    if text.startswith("- "):
        pdf.set_x(pdf.l_margin + 4)
        pdf.multi_cell(
            0, 6, "* " + text[2:], align="L", new_x="LMARGIN", new_y="NEXT"
        )
    else:
        pdf.multi_cell(0, 6, text, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def build() -> FPDF:
    pdf = PolicyPDF(format="Letter")
    pdf.set_creation_date(datetime(2025, 3, 1, 9, 0, 0, tzinfo=timezone.utc))
    pdf.set_title(TITLE)
    pdf.set_author(BUSINESS)
    pdf.set_subject("Studio policies, safety rules and procedures")
    pdf.set_creator("sample_data/make_policies_pdf.py")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 20)
    pdf.multi_cell(0, 10, BUSINESS, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 9, TITLE, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    pdf.set_font("Helvetica", "", 11)
    for text in INTRO:
        paragraph(pdf, text)

    for heading, paragraphs in SECTIONS:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 14)
        pdf.multi_cell(0, 8, heading, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
        pdf.set_font("Helvetica", "", 11)
        for text in paragraphs:
            paragraph(pdf, text)
    return pdf


def main() -> None:
    pdf = build()
    pdf.output(str(OUTPUT))
    print(f"wrote {OUTPUT} ({pdf.pages_count} pages)")


if __name__ == "__main__":
    main()
