"""Word lists the renderer draws from. Order is popularity: the generator picks with Zipf weights."""

from __future__ import annotations

FIRST_NAMES = (
    "James Mary Michael Patricia John Jennifer Robert Linda David Elizabeth William Barbara Richard Susan "
    "Joseph Jessica Thomas Sarah Christopher Karen Charles Lisa Daniel Nancy Matthew Betty Anthony Sandra "
    "Mark Margaret Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol Kevin "
    "Amanda Brian Melissa George Deborah Timothy Stephanie Ronald Dorothy Jason Rebecca Edward Sharon "
    "Jeffrey Laura Ryan Cynthia Jacob Amy Gary Kathleen Nicholas Angela Eric Shirley Jonathan Brenda "
    "Stephen Emma Larry Anna Justin Pamela Scott Nicole Brandon Samantha Benjamin Katherine Samuel "
    "Christine Gregory Helen Alexander Debra Patrick Rachel Frank Carolyn Raymond Janet Jack Maria Dennis "
    "Catherine Jerry Heather Tyler Diane Aaron Olivia Jose Julie Adam Joyce Nathan Victoria Henry Ruth "
    "Zachary Virginia Douglas Lauren Peter Kelly Kyle Christina Noah Joan Ethan Evelyn Jeremy Judith "
    "Walter Andrea Christian Hannah Keith Megan Roger Cheryl Terry Jacqueline Austin Martha Sean Madison "
    "Gerald Teresa Carl Gloria Harold Sara Dylan Janice Arthur Ann Lawrence Kathryn Jordan Abigail Jesse "
    "Sophia Bryan Frances Billy Jean Bruce Alice Gabriel Judy Joe Isabella Logan Julia Alan Grace Juan "
    "Amber Albert Denise Willie Danielle Elijah Marilyn Wayne Beverly Randy Charlotte Vincent Natalie "
    "Mason Theresa Roy Diana Ralph Brittany Bobby Doris Russell Kayla Bradley Alexis Philip Lori Eugene "
    "Priya Wei Mohammed Aisha Hiroshi Yuki Carlos Sofia Luis Fatima Ahmed Mei Raj Ana Diego Chen Omar "
    "Leila Ivan Olga Kwame Amara Tariq Nadia Mateo Valentina Arjun Ananya Hyun Jin Thanh Linh Kofi Zara"
).split()

LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark "
    "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
    "Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker "
    "Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper "
    "Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James "
    "Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez "
    "Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez "
    "Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole "
    "Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens "
    "Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker "
    "Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz "
    "Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice "
    "Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley "
    "Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham "
    "Duncan Armstrong Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston "
    "Matthews Pena Richards Contreras Willis Carpenter Lawrence Sandoval Wang Li Zhang Liu Singh Kumar "
    "Shah Khan Ali Ahmed Hussain Tanaka Suzuki Sato Park Choi Pham Le Okafor Mensah Mwangi Ivanov Petrov "
    "Kowalski Novak Horvat Rossi Russo Ferrari Muller Schneider Dubois Laurent Costa Oliveira Pereira"
).split()

STREETS = (
    "Main Oak Pine Maple Cedar Elm Washington Lake Hill Walnut Park Sunset Lincoln Jackson Church River "
    "Highland Spring Franklin Chestnut Madison Willow Meadow Forest Center Ridge Jefferson Adams Mill "
    "Cherry Valley Dogwood Lakeview Hickory Birch Spruce Sycamore Magnolia Aspen Poplar Laurel Juniper "
    "Prospect Broad Market Union Liberty Bridge Front Water Grove Orchard Harbor Bay Canyon Mesa Vista "
    "Summit Fairview Greenwood Riverside Woodland Brookside Kingston Hamilton Clinton Monroe Grant "
    "Sherman Lee Hudson Delaware Ohio Kentucky Vermont Colorado Dakota Sierra Cypress Palm Mulberry "
    "Locust Beech Ash Holly Ivy Rosewood Briarwood Foxhill Deer Quail Heron Falcon Eagle Hawk Cardinal"
).split()

# (full word, short forms a person might type instead); the normaliser folds them to one
STREET_SUFFIXES = (
    ("Street", ("St", "St.", "Str")),
    ("Avenue", ("Ave", "Ave.", "Av")),
    ("Road", ("Rd", "Rd.")),
    ("Drive", ("Dr", "Dr.")),
    ("Lane", ("Ln", "Ln.")),
    ("Boulevard", ("Blvd", "Blvd.")),
    ("Court", ("Ct", "Ct.")),
    ("Place", ("Pl", "Pl.")),
)

# city, state, first three zip digits
CITIES = (
    ("New York", "NY", "100"),
    ("Los Angeles", "CA", "900"),
    ("Chicago", "IL", "606"),
    ("Houston", "TX", "770"),
    ("Phoenix", "AZ", "850"),
    ("Philadelphia", "PA", "191"),
    ("San Antonio", "TX", "782"),
    ("San Diego", "CA", "921"),
    ("Dallas", "TX", "752"),
    ("Jacksonville", "FL", "322"),
    ("Austin", "TX", "787"),
    ("Fort Worth", "TX", "761"),
    ("San Jose", "CA", "951"),
    ("Columbus", "OH", "432"),
    ("Charlotte", "NC", "282"),
    ("Indianapolis", "IN", "462"),
    ("San Francisco", "CA", "941"),
    ("Seattle", "WA", "981"),
    ("Denver", "CO", "802"),
    ("Oklahoma City", "OK", "731"),
    ("Nashville", "TN", "372"),
    ("Washington", "DC", "200"),
    ("El Paso", "TX", "799"),
    ("Las Vegas", "NV", "891"),
    ("Boston", "MA", "021"),
    ("Detroit", "MI", "482"),
    ("Portland", "OR", "972"),
    ("Louisville", "KY", "402"),
    ("Memphis", "TN", "381"),
    ("Baltimore", "MD", "212"),
    ("Milwaukee", "WI", "532"),
    ("Albuquerque", "NM", "871"),
    ("Tucson", "AZ", "857"),
    ("Fresno", "CA", "937"),
    ("Sacramento", "CA", "958"),
    ("Mesa", "AZ", "852"),
    ("Kansas City", "MO", "641"),
    ("Atlanta", "GA", "303"),
    ("Omaha", "NE", "681"),
    ("Raleigh", "NC", "276"),
    ("Miami", "FL", "331"),
    ("Minneapolis", "MN", "554"),
    ("Tulsa", "OK", "741"),
    ("Cleveland", "OH", "441"),
    ("Wichita", "KS", "672"),
    ("New Orleans", "LA", "701"),
    ("Tampa", "FL", "336"),
    ("Pittsburgh", "PA", "152"),
    ("Cincinnati", "OH", "452"),
    ("St. Louis", "MO", "631"),
)

# real US area codes, so phone numbers parse as possible numbers
AREA_CODES = (
    "201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 224 225 228 229 231 234 239 240 "
    "248 251 252 253 254 256 260 262 267 269 270 276 281 301 302 303 304 305 307 308 309 310 312 313 314 "
    "315 316 317 318 319 320 321 323 325 330 334 336 337 339 347 351 352 360 361 386 401 402 404 405 406 "
    "407 408 409 410 412 413 414 415 417 419 423 424 425 430 432 434 435 440 443 469 478 479 480 484 501 "
    "502 503 504 505 507 508 509 510 512 513 515 516 517 518 520 530 540 541 551 559 561 562 563 567 570 "
    "571 573 574 580 585 586 601 602 603 605 606 607 608 609 610 612 614 615 616 617 618 619 620 623 626 "
    "630 631 636 641 646 650 651 660 661 662 678 682 701 702 703 704 706 707 708 712 713 714 715 716 717 "
    "718 719 720 724 727 731 732 734 740 754 757 760 763 765 770 772 773 774 775 781 785 786 801 802 803"
).split()

EMAIL_DOMAINS = (
    "gmail.com yahoo.com outlook.com hotmail.com icloud.com aol.com proton.me comcast.net live.com "
    "msn.com att.net verizon.net me.com gmx.com mail.com yandex.com zoho.com fastmail.com"
).split()

DOC_TYPES = ("DL", "PASSPORT", "ID")
DOC_TYPE_P = (0.62, 0.26, 0.12)
DOC_COUNTRIES = ("US", "MX", "CA", "IN", "GB", "PH", "CN", "DE", "NG", "BR")
DOC_COUNTRY_P = (0.84, 0.05, 0.03, 0.02, 0.015, 0.012, 0.01, 0.008, 0.008, 0.007)
