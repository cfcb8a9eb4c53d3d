"""The questions of the training set and of the held-out benchmark, generated here (nothing is downloaded).

Training questions are every `TRAIN_TOPICS` topic asked in each `PHRASINGS` way; held-out questions ask
about `HELD_OUT_TOPICS`, which never occur in training, one phrasing each (cycling through `PHRASINGS`).
"""

from __future__ import annotations

PHRASINGS = (
    "What is {topic}?",
    "Can you explain how {topic} works?",
    "Why is {topic} important?",
    "Tell me something interesting about {topic}.",
)

TRAIN_TOPICS = (
    "photosynthesis", "a rainbow", "a volcano", "gravity", "the moon", "an earthquake", "a black hole",
    "the water cycle", "electricity", "magnetism", "a tornado", "the immune system", "DNA", "a vaccine",
    "the heart", "sleep", "coffee", "chocolate", "bread", "cheese", "the internet", "a computer",
    "a smartphone", "email", "a battery", "solar power", "wind power", "a bicycle", "a car engine",
    "an airplane", "a submarine", "a bridge", "a skyscraper", "the printing press", "the telescope",
    "the microscope", "a clock", "money", "a bank", "a library", "a museum", "the Olympic Games",
    "chess", "football", "music", "the piano", "painting", "poetry", "a novel", "photography",
    "a forest", "a desert", "the ocean", "a coral reef", "a glacier", "a river", "a honeybee",
    "an elephant", "a dolphin", "a penguin", "a spider", "a butterfly", "a tree", "a mushroom",
    "recycling", "climate change", "democracy", "a newspaper", "a map", "a compass", "the alphabet",
    "mathematics", "a triangle", "prime numbers", "a calendar", "the seasons", "a thunderstorm",
    "snow", "the sun", "the planet Mars",
)

HELD_OUT_TOPICS = (
    "a rocket", "the brain", "tea", "a lighthouse", "the violin", "a kangaroo", "a cactus", "an owl",
    "a hurricane", "the Milky Way", "a train", "a camera", "salt", "honey", "a castle", "a pyramid",
    "the guitar", "a whale", "an octopus", "a comet", "rain", "a mountain", "a lake", "a windmill",
    "a robot", "a password", "a dictionary", "yoga", "a garden", "the lungs", "a thermometer", "a candle",
    "a kite", "a wolf", "a shark", "an island", "a canal", "a theater", "a marathon", "a bakery",
)


def train_questions() -> list[str]:
    """Every training topic in every phrasing (topic-major order)."""
    return [phrasing.format(topic=topic) for topic in TRAIN_TOPICS for phrasing in PHRASINGS]


def held_out_questions() -> list[str]:
    """One question per held-out topic, the phrasings taken in turn."""
    return [PHRASINGS[i % len(PHRASINGS)].format(topic=topic) for i, topic in enumerate(HELD_OUT_TOPICS)]


if __name__ == "__main__":
    print(len(train_questions()), "training questions,", len(held_out_questions()), "held out")
